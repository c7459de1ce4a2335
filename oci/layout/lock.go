package layout

import (
	"context"
	"os"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/filelock"
)

// lockLayout takes an exclusive flock on the layout's lock file, waiting (and watching ctx)
// while another writer holds it. The file is never removed: removing a lock file races
// with writers that have opened but not yet locked it.
func lockLayout(ctx context.Context, root *os.Root, where string) (unlock func(), err error) {
	f, err := root.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, errors.Wrapf(err, "opening lock file %s in %s", LockFile, where)
	}
	release, err := filelock.Lock(ctx, f, LockFile+" in "+where)
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { release(); f.Close() }, nil
}
