package archive

import (
	"context"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// newImageSource indexes the archive and reads the layout inside it in place.
func newImageSource(ctx context.Context, r reference, sys *types.SystemContext) (types.ImageSource, error) {
	a, err := openArchive(ctx, r.path, tempDir(sys))
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
	}
	src, err := layout.NewImageSourceFS(r, a.fsys(), r.path, r.name, r.digest, a)
	if err != nil {
		a.Close()
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
	}
	return src, nil
}
