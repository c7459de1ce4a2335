//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package boltdb

import (
	"os"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

// readLocked reads the file at path under a shared flock, the lock bbolt readers take, so that
// no bbolt writer (which holds the exclusive lock for as long as it has the file open) is
// half-way through a commit while we read.
func readLocked(path string, timeout time.Duration) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "opening the cache file")
	}
	defer f.Close()
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.Wrap(err, "locking the cache file")
		}
		if time.Now().After(deadline) {
			return nil, errLockTimeout
		}
		time.Sleep(50 * time.Millisecond) // bbolt polls its lock the same way
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	return readCappedFile(f)
}
