//go:build unix

package layout

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
)

// lockLayout takes an exclusive flock on the layout's lock file, waiting (and watching ctx)
// while another writer holds it. The file is never removed: removing a lock file races
// with writers that have opened but not yet locked it.
func lockLayout(ctx context.Context, root *os.Root, where string) (unlock func(), err error) {
	f, err := root.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, errors.Wrapf(err, "opening lock file %s in %s", LockFile, where)
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, errors.Wrapf(err, "locking %s in %s", LockFile, where)
		}
		logrus.WithField("layout", where).Debug("waiting for another writer's lock")
		select {
		case <-ctx.Done():
			f.Close()
			return nil, errors.Wrapf(ctx.Err(), "waiting for the lock on %s", where)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
