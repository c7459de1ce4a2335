# bench/lib.sh, sourced by run.sh, bundle.sh and sync.sh: the peer tools, and the Debian docker-registry
# (CNCF distribution, filesystem storage under $work/reg/NAME, plain HTTP on 127.0.0.1).

# bench_init NAME DEFAULT_TOOLS SUBDIR...: the settings bundle.sh, resume.sh and sync.sh share.
# Sets quick (BENCH_QUICK), runs (BENCH_N: 3, or 1 when quick), tools (BENCH_TOOLS, else
# DEFAULT_TOOLS), work (BENCH_WORK, else a new directory; absolute) with bin/ and each SUBDIR in
# it, bin, and log(), which prefixes its messages with NAME. Needs $root; builds nothing.
bench_init() {
	local name=$1 default_tools=$2 d
	shift 2
	quick=${BENCH_QUICK:-0}
	if [ "$quick" = 1 ]; then runs=${BENCH_N:-1}; else runs=${BENCH_N:-3}; fi
	tools=${BENCH_TOOLS:-$default_tools}
	work=${BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/imgcopy-$name.XXXXXX")}
	for d in bin "$@"; do mkdir -p "$work/$d"; done
	work=$(cd "$work" && pwd)
	bin=$work/bin
	bench_name=$name
}
log() { echo "${bench_name:-bench}: $*" >&2; }

# require_peers TOOL...: installs the peers (unless BENCH_SKIP_INSTALL=1), puts GOPATH/bin on
# PATH and fails unless every TOOL is there.
require_peers() {
	if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
		"$here/install-peers.sh"
	fi
	PATH="$(go env GOPATH)/bin:$PATH"
	export PATH
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { log "$tool is missing (run bench/install-peers.sh)"; exit 1; }
	done
}

# start_registry and stop_registry need $work and $bin (with bench/floor built).
declare -A reg_pid reg_port
start_registry() { # NAME
	local name=$1 dir=$work/reg/$1
	mkdir -p "$dir"
	[ -n "${reg_port[$name]:-}" ] || reg_port[$name]=$("$bin/floor" freeport)
	cat >"$dir/config.yml" <<EOC
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${reg_port[$name]}
  secret: bench-secret
EOC
	docker-registry serve "$dir/config.yml" >>"$dir/log" 2>&1 &
	reg_pid[$name]=$!
	"$bin/floor" wait "127.0.0.1:${reg_port[$name]}" 20
}
stop_registry() { # NAME
	local pid=${reg_pid[$1]:-}
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		reg_pid[$1]=""
	fi
}

# bench_registries starts registries A and B, sets $A and $B to their HOST:PORT, and on exit
# stops them and removes $work (unless BENCH_KEEP=1, or BENCH_WORK named it).
bench_registries() {
	trap bench_cleanup EXIT
	start_registry A
	start_registry B
	A=127.0.0.1:${reg_port[A]}
	B=127.0.0.1:${reg_port[B]}
}
bench_cleanup() {
	stop_registry A
	stop_registry B
	if [ "${BENCH_KEEP:-0}" != 1 ] && [ -z "${BENCH_WORK:-}" ]; then rm -rf "$work"; fi
}

# wipe_b empties registry B.
wipe_b() { stop_registry B; rm -rf "$work/reg/B/data"; start_registry B; }
