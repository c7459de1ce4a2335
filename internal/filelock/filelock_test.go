//go:build unix

package filelock

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/errors"
)

// openTwice opens one lock file twice: two holders, as two processes would be.
func openTwice(t *testing.T) (first, second *os.File) {
	p := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	return open(), open()
}

func TestLockWaitsAndHonoursContext(t *testing.T) {
	first, second := openTwice(t)
	if err := Lock(context.Background(), first, "test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Lock(ctx, second, "test"); !errors.Is(err, context.Canceled) {
		t.Fatalf("second lock while held: %v, want context.Canceled", err)
	}
	first.Close() // releases the lock
	if err := Lock(context.Background(), second, "test"); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
}

func TestTryLock(t *testing.T) {
	first, second := openTwice(t)
	if ok, err := TryLock(first); !ok || err != nil {
		t.Fatalf("first TryLock = %v, %v; want true", ok, err)
	}
	if ok, err := TryLock(second); ok || err != nil {
		t.Fatalf("TryLock while held = %v, %v; want false, nil", ok, err)
	}
	first.Close()
	if ok, err := TryLock(second); !ok || err != nil {
		t.Fatalf("TryLock after release = %v, %v; want true", ok, err)
	}
}
