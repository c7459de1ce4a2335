package archive

import (
	"context"
	"os"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/filelock"
)

// lockDir takes an exclusive flock on the directory that holds the archive, so that writers
// committing to the same archive read, merge and rename one at a time. Locking the directory
// rather than a lock file leaves nothing behind next to the user's archive.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s for locking", dir)
	}
	if err := filelock.Lock(ctx, f, dir); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
