package docker

import (
	"strings"

	distref "github.com/distribution/reference"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Transport is the "docker" transport.
var Transport types.ImageTransport = dockerTransport{}

// transportName is the transport's name, also used as the blob-info cache transport.
const transportName = "docker"

type dockerTransport struct{}

// Name implements types.ImageTransport.
func (dockerTransport) Name() string { return transportName }

// ParseReference implements types.ImageTransport. The reference must start with "//", as
// in skopeo: "//busybox", "//quay.io/org/repo:tag", "//127.0.0.1:5000/a@sha256:…".
func (dockerTransport) ParseReference(ref string) (types.ImageReference, error) {
	rest, ok := strings.CutPrefix(ref, "//")
	if !ok {
		return nil, types.UsageError{Err: errors.Errorf("docker reference %q does not start with \"//\"", ref)}
	}
	named, err := distref.ParseNormalizedNamed(rest)
	if err != nil {
		host, _, hasPath := strings.Cut(rest, "/")
		if h := strings.SplitN(host, "@", 2)[0]; !hasPath && strings.HasPrefix(h, "[") {
			// An IPv6 registry alone, which the grammar cannot even read as a Docker Hub image.
			return nil, types.UsageError{Err: errors.Errorf("%q names no repository: for a repository on the registry %s write docker://%s/REPOSITORY[:TAG]", rest, h, h)}
		}
		if unbracketedIPv6(host) {
			return nil, types.UsageError{Err: errors.Wrapf(err, "parsing docker reference %q (write an IPv6 address in brackets, as in docker://[::1]:5000/repo:tag)", rest)}
		}
		return nil, types.UsageError{Err: errors.Wrapf(err, "parsing docker reference %q", rest)}
	}
	if err := refuseHostOnly(rest, named); err != nil {
		return nil, err
	}
	return NewReference(named)
}

// refuseHostOnly refuses a reference that is only a registry's host (and port), which the
// reference grammar reads as an image on Docker Hub: "127.0.0.1:5000" is
// docker.io/library/127.0.0.1 with tag 5000, "quay.io" is docker.io/library/quay.io. No
// official Docker Hub image has a dot in its name, so the user meant a repository on that
// host.
func refuseHostOnly(ref string, named distref.Named) error {
	if !hostOnly(ref, named) {
		return nil
	}
	host := strings.SplitN(ref, "@", 2)[0]
	return types.UsageError{Err: errors.Errorf("%q names no repository: read as an image it would be docker.io/library/%s on Docker Hub; "+
		"for a repository on the registry %s write docker://%s/REPOSITORY[:TAG]", ref, ref, host, host)}
}

// hostOnly reports whether ref, parsed as named, is one path element on Docker Hub that looks
// like a host: "localhost" or a name with a dot. (A numeric tag is no sign of a port:
// redis:7 is an image.)
func hostOnly(ref string, named distref.Named) bool {
	if strings.Contains(ref, "/") || distref.Domain(named) != "docker.io" {
		return false
	}
	host, _, _ := strings.Cut(strings.SplitN(ref, "@", 2)[0], ":")
	return host == "localhost" || strings.Contains(host, ".")
}
