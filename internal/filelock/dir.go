package filelock

import (
	"context"
	"os"

	"github.com/pkg/errors"
)

// LockDir takes an exclusive lock on directory dir itself, so that writers that replace a file
// in it (an archive) read, merge and rename one at a time. Locking the directory rather than
// a lock file leaves nothing behind next to the user's files. unlock releases it.
func LockDir(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s for locking", dir)
	}
	release, err := Lock(ctx, f, dir)
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { release(); f.Close() }, nil
}
