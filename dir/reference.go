package dir

import (
	"context"
	"path/filepath"

	dockerref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

const (
	versionFile  = "version"
	manifestFile = "manifest.json"
	// version is the content of versionFile skopeo writes and checks before overwriting.
	version = "Directory Transport Version: 1.1\n"
)

var _ types.ImageReference = reference{}

// reference is a dir: reference, the path as the user gave it, and the name of the image when
// it was found in (or named for) a store of many.
type reference struct {
	path string
	name dockerref.Named
}

// Transport implements types.ImageReference.
func (r reference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.ImageReference.
func (r reference) StringWithinTransport() string { return r.path }

// DockerReference implements types.ImageReference; a directory carries no name, except the
// one an image has in a store.
func (r reference) DockerReference() dockerref.Named { return r.name }

// NewImageSource implements types.ImageReference.
func (r reference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return newImageSource(r)
}

// NewImageDestination implements types.ImageReference.
func (r reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	var resume *types.ResumeOptions
	if sys != nil {
		resume = sys.Resume
	}
	return newImageDestination(r, resume, sys == nil || !sys.NoFsync)
}

// blobName returns the file name of a blob inside the directory, validating d first so that
// a hostile digest can never name a path outside it.
func blobName(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errors.Wrapf(err, "invalid digest %q", d)
	}
	return d.Encoded(), nil
}

// manifestName returns the file name of the top-level manifest (instance nil) or of an instance.
func manifestName(instance *digest.Digest) (string, error) {
	if instance == nil {
		return manifestFile, nil
	}
	name, err := blobName(*instance)
	if err != nil {
		return "", err
	}
	return name + ".manifest.json", nil
}

func (r reference) file(name string) string { return filepath.Join(r.path, name) }
