package layout

import (
	"context"

	dockerref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

var (
	_ types.ImageReference = reference{}
	_ types.ImageDeleter   = reference{}
	_ types.TagLister      = reference{}
)

// reference is an oci: reference: a layout path and either an image name, a manifest digest
// or neither (the layout's only image).
type reference struct {
	path   string
	name   string
	digest digest.Digest
}

func newReference(path, name string, d digest.Digest) reference {
	return reference{path: path, name: name, digest: d}
}

// Transport implements types.ImageReference.
func (r reference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.ImageReference.
func (r reference) StringWithinTransport() string {
	return FormatReference(r.path, r.name, r.digest)
}

// FormatReference renders PATH, PATH:NAME or PATH@DIGEST, the reference syntax shared with
// oci-archive.
func FormatReference(path, name string, d digest.Digest) string {
	switch {
	case d != "":
		return path + "@" + d.String()
	case name != "":
		return path + ":" + name
	}
	return path
}

// DockerReference implements types.ImageReference: the name when it is a full reference with
// a tag (as crane and containerd write), nil for a bare tag.
func (r reference) DockerReference() dockerref.Named {
	return DockerReference(r.name)
}

// DockerReference returns an image name as a registry-style reference when it is a full
// reference with a tag, and nil for a bare tag or no name.
func DockerReference(name string) dockerref.Named {
	if name == "" {
		return nil
	}
	named, err := dockerref.ParseNormalizedNamed(name)
	if err != nil {
		return nil
	}
	if _, ok := named.(dockerref.NamedTagged); !ok {
		return nil
	}
	return named
}

// NewImageSource implements types.ImageReference.
func (r reference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return newImageSource(r)
}

// NewImageDestination implements types.ImageReference.
func (r reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	if r.digest != "" {
		return nil, errors.Errorf("writing to %s: a digest reference can only be read; use PATH:NAME", types.ImageName(r))
	}
	var resume *types.ResumeOptions
	if sys != nil {
		resume = sys.Resume
	}
	return newImageDestination(r, resume, sys == nil || !sys.NoFsync)
}
