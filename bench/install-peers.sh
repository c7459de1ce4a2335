#!/usr/bin/env bash
# install-peers.sh installs the peer tools the interop tests (tests/interop, IMGCOPY_INTEROP=1)
# and the benchmarks (bench/run.sh) run against, pinned, installing only what is missing.
# Idempotent: a second run with everything present does nothing and needs no network.
#
#   Debian (apt):  skopeo, umoci, docker-registry (CNCF distribution 2.8), time (/usr/bin/time),
#                  containerd (ctr images import, the loader of k3s and of Docker's containerd store)
#   go install:    crane, regctl, regsync  -> $(go env GOPATH)/bin, or $PEERS_GOBIN when set
#
# Versions below were verified on Debian 12 (bookworm) with Go 1.26. If Debian no longer carries
# the pinned package version (point/security release), the script installs the candidate version
# and says so, rather than failing the whole CI run.
set -euo pipefail

CRANE_MODULE=github.com/google/go-containerregistry/cmd/crane
CRANE_VERSION=v0.22.1
REGCTL_MODULE=github.com/regclient/regclient/cmd/regctl
REGCTL_VERSION=v0.11.7
REGSYNC_MODULE=github.com/regclient/regclient/cmd/regsync
REGSYNC_VERSION=v0.11.7

# package name -> Debian version (bookworm)
APT_PINS=(
	"skopeo=1.9.3+ds1-1+b10"
	"umoci=0.4.7+ds-3+b7"
	"docker-registry=2.8.2+ds1-1"
	"time=1.9-0.2"
	"containerd=1.6.20~ds1-1+deb12u3"
)

log() { echo "install-peers: $*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
		log "need root (or sudo) to run: $*"; return 1
	fi
}

missing_apt=()
for pin in "${APT_PINS[@]}"; do
	pkg=${pin%%=*}
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing_apt+=("$pin")
	fi
done
if [ ${#missing_apt[@]} -gt 0 ]; then
	log "apt: installing ${missing_apt[*]}"
	as_root apt-get update -qq
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}" >/dev/null; then
		unpinned=("${missing_apt[@]%%=*}")
		log "WARNING: pinned versions not available; installing candidates of ${unpinned[*]}"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${unpinned[@]}" >/dev/null
	fi
fi

gobin=${PEERS_GOBIN:-$(go env GOPATH)/bin}
mkdir -p "$gobin"

# go_tool NAME MODULE VERSION VERSION-COMMAND...: installs MODULE@VERSION unless NAME reports VERSION.
go_tool() {
	local name=$1 module=$2 version=$3
	shift 3
	if [ -x "$gobin/$name" ] && "$gobin/$name" "$@" 2>/dev/null | grep -qF "$version"; then
		return 0
	fi
	log "go install $module@$version"
	GOBIN=$gobin GOFLAGS= go install "$module@$version"
}
go_tool crane "$CRANE_MODULE" "$CRANE_VERSION" version
go_tool regctl "$REGCTL_MODULE" "$REGCTL_VERSION" version
go_tool regsync "$REGSYNC_MODULE" "$REGSYNC_VERSION" version

case ":$PATH:" in
*":$gobin:"*) ;;
*) log "note: add $gobin to PATH (the interop tests and bench/run.sh look tools up in PATH)" ;;
esac

log "peers: skopeo $(skopeo --version | awk '{print $3}'), $(ctr --version | awk '{print $1, $3}'), umoci $(umoci --version | awk '{print $3}'), $(docker-registry --version | awk '{print $1, $3}'), crane $("$gobin/crane" version), regctl $("$gobin/regctl" version --format '{{.VCSTag}}' 2>/dev/null || echo "$REGCTL_VERSION"), regsync $REGSYNC_VERSION"
