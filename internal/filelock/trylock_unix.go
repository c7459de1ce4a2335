//go:build unix

package filelock

import (
	"os"
	"syscall"

	"github.com/pkg/errors"
)

// TryLock takes an exclusive flock on f without waiting. It reports false when another open
// file (in this or another process) holds the lock. Closing f releases it; a process that dies
// releases its locks too, which is how a lock tells live work from what a dead process left.
func TryLock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		}
		return false, errors.Wrapf(err, "locking %s", f.Name())
	}
}
