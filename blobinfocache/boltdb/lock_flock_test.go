//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package boltdb

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/errors"
)

// sink keeps the read of the mapping from being optimised away.
var sink byte

// The file is checked through a mapping: one shortened underneath it (by something that
// ignores the lock) faults on access, which must become errCorrupt, not a crash.
func TestCheckLockedFileShrunkUnderMapping(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cache.db")
	if err := os.WriteFile(path, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	var saw int
	err := checkLocked(path, 0, func(b []byte) error {
		saw = len(b)
		if err := os.Truncate(path, 0); err != nil {
			t.Error(err)
			return nil
		}
		sink = b[len(b)-1] // past the end of the file now: SIGBUS
		return nil
	})
	if saw != 64<<10 {
		t.Fatalf("check saw %d bytes, want the whole file", saw)
	}
	if !errors.Is(err, errCorrupt) {
		t.Fatalf("got %v, want errCorrupt", err)
	}
}

// A missing file is os.ErrNotExist, an empty one is checked as no bytes.
func TestCheckLockedMissingAndEmpty(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := checkLocked(filepath.Join(dir, "none"), 0, func([]byte) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: got %v, want os.ErrNotExist", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	called := false
	if err := checkLocked(empty, 0, func(b []byte) error { called = len(b) == 0; return nil }); err != nil || !called {
		t.Fatalf("empty file: err %v, check called with no bytes %v", err, called)
	}
}
