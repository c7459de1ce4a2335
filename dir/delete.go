package dir

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

var _ types.TagDeleter = reference{}

// DeleteTag implements types.TagDeleter (a sync's --prune). In a dir: store each name is a
// directory of its own, sharing no file with another name, so removing the name removes the
// directory: it is first moved into a locked staging directory beside it, so that the image
// disappears at once and a crash leaves only a staging directory (which listers skip and the
// next deletion there removes), then deleted. Only a directory holding an image
// (manifest.json) is removed.
func (r reference) DeleteTag(ctx context.Context, sys *types.SystemContext) error {
	fi, err := os.Lstat(filepath.Join(r.path, manifestFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.Wrapf(types.ErrManifestNotFound, "deleting %s: %s holds no image", types.ImageName(r), r.path)
	case err != nil:
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	case !fi.Mode().IsRegular():
		return errors.Errorf("deleting %s: %s is not a regular file", types.ImageName(r), manifestFile)
	}
	parent := filepath.Dir(filepath.Clean(r.path))
	sd, err := staging.NewDir(parent)
	if err != nil {
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	if err := os.Rename(r.path, filepath.Join(sd.Path, "image")); err != nil {
		_ = sd.Remove()
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	if sys == nil || !sys.NoFsync {
		if err := atomicfile.SyncDir(parent); err != nil {
			_ = sd.Remove()
			return errors.Wrapf(err, "deleting %s", types.ImageName(r))
		}
	}
	err = sd.Remove()
	// Not what a killed copy into an archive beside the image left: that is the archive's.
	staging.RemoveAbandonedOf(parent, func(dir string) bool { return staging.ArchiveOf(dir) == "" })
	return errors.Wrapf(err, "deleting %s", types.ImageName(r))
}
