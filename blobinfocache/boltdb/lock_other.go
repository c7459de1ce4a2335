//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package boltdb

import (
	"io"
	"os"
	"time"

	"github.com/pkg/errors"
)

// checkLocked runs check on the contents of the file at path, read whole. Without flock a
// concurrent writer can make validation fail, which only costs a fallback to memory.
func checkLocked(path string, _ time.Duration, check func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.Wrap(err, "opening the cache file")
	}
	defer f.Close()
	b, err := readCappedFile(f)
	if err != nil {
		return err
	}
	return check(b)
}

// readCappedFile reads f whole, refusing files larger than a cache file ever grows to. The
// buffer is allocated once at the file's size: io.ReadAll's doubling made reading a 2 MiB
// cache 25 ms of CPU per run on the benchmark VM (issue 18).
func readCappedFile(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, errors.Wrap(err, "reading the cache file")
	}
	if fi.Size() > maxValidateLen {
		return nil, errors.Wrap(errCorrupt, "file larger than a cache file grows to")
	}
	b := make([]byte, fi.Size())
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, errors.Wrap(err, "reading the cache file")
	}
	return b[:n], nil
}
