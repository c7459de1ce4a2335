//go:build unix

package archive

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

// lockDir takes an exclusive flock on the directory that holds the archive, so that writers
// committing to the same archive read, merge and rename one at a time. Locking the directory
// rather than a lock file leaves nothing behind next to the user's archive.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s for locking", dir)
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, errors.Wrapf(err, "locking %s", dir)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, errors.Wrapf(ctx.Err(), "waiting for the lock on %s", dir)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
