//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package boltdb

import (
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

// checkLocked runs check on the contents of the file at path under a shared flock, the lock
// bbolt readers take, so that no bbolt writer (which holds the exclusive lock for as long as it
// has the file open) is half-way through a commit meanwhile.
//
// check sees a read-only shared mapping of the file, not a copy: reading a 2 MiB cache into a
// new buffer was ~500 page faults of fresh memory, 10–15 ms of CPU per run on the benchmark VM
// (issue 18), where the mapping is served from the page cache. A file shortened under the
// mapping by something that ignores the lock raises SIGBUS on access; SetPanicOnFault turns
// that into a panic, recovered here as an error, so the caller falls back to memory.
func checkLocked(path string, timeout time.Duration, check func([]byte) error) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return errors.Wrap(err, "opening the cache file")
	}
	defer f.Close()
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return errors.Wrap(err, "locking the cache file")
		}
		if time.Now().After(deadline) {
			return errLockTimeout
		}
		time.Sleep(50 * time.Millisecond) // bbolt polls its lock the same way
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	fi, err := f.Stat()
	if err != nil {
		return errors.Wrap(err, "reading the cache file")
	}
	size := fi.Size()
	if size > maxValidateLen {
		return errors.Wrap(errCorrupt, "file larger than a cache file grows to")
	}
	if size == 0 {
		return check(nil)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return errors.Wrap(err, "mapping the cache file")
	}
	defer func() { _ = syscall.Munmap(b) }()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = errors.Wrapf(errCorrupt, "reading the cache file: %v", r)
		}
	}()
	return check(b)
}
