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
		return nil, types.UsageError{Err: errors.Wrapf(err, "parsing docker reference %q", rest)}
	}
	return NewReference(named)
}
