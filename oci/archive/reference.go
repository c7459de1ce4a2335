package archive

import (
	"context"

	dockerref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

var _ types.ImageReference = reference{}

// reference is an oci-archive: reference: a tar path and an image name or manifest digest.
// A reference from a StoreWriter also carries its session, which its destinations write into.
type reference struct {
	path    string
	name    string
	digest  digest.Digest
	session *session
}

func errNoColon(path string) error {
	return types.UsageError{Err: errors.Errorf("oci-archive path %q must not contain \":\"", path)}
}

// Transport implements types.ImageReference.
func (r reference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.ImageReference.
func (r reference) StringWithinTransport() string {
	return layout.FormatReference(r.path, r.name, r.digest)
}

// DockerReference implements types.ImageReference: the name when it is a full reference with
// a tag, nil for a bare tag.
func (r reference) DockerReference() dockerref.Named {
	return layout.DockerReference(r.name)
}

// NewImageSource implements types.ImageReference.
func (r reference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return newImageSource(ctx, r, sys)
}

// NewImageDestination implements types.ImageReference.
func (r reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	if r.digest != "" {
		return nil, errors.Errorf("writing to %s: a digest reference can only be read; use PATH:NAME", types.ImageName(r))
	}
	return newImageDestination(ctx, r, sys)
}
