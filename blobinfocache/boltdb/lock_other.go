//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package boltdb

import (
	"os"
	"time"

	"github.com/pkg/errors"
)

// readLocked reads the file at path. Without flock a concurrent writer can make validation fail,
// which only costs a fallback to memory.
func readLocked(path string, _ time.Duration) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "opening the cache file")
	}
	defer f.Close()
	return readCappedFile(f)
}
