//go:build unix

package filelock

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
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
	unlock, err := Lock(context.Background(), first, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ctx, second, "test"); !errors.Is(err, context.Canceled) {
		t.Fatalf("second lock while held: %v, want context.Canceled", err)
	}
	unlock()
	unlock2, err := Lock(context.Background(), second, "test")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}

// TestLockFromAnotherProcessIsPolled: a flock held through another open file description
// (another process's, as far as the gate can tell) is waited for by polling it.
func TestLockFromAnotherProcessIsPolled(t *testing.T) {
	first, second := openTwice(t)
	if err := syscall.Flock(int(first.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := flockPolls.Load()
	done := make(chan error, 1)
	go func() {
		unlock, err := Lock(ctx, second, "test")
		if err == nil {
			unlock()
		}
		done <- err
	}()
	for flockPolls.Load() == before {
		runtime.Gosched()
	}
	first.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestLockInProcessTakesOverWithoutPolling: holders in one process queue on the gate, so
// that the next takes the flock when the previous released it, never finding it taken.
func TestLockInProcessTakesOverWithoutPolling(t *testing.T) {
	first, second := openTwice(t)
	queued := make(chan struct{})
	gateWaitHook = func() { close(queued) }
	t.Cleanup(func() { gateWaitHook = nil })
	unlock, err := Lock(context.Background(), first, "test")
	if err != nil {
		t.Fatal(err)
	}
	before := flockPolls.Load()
	done := make(chan error, 1)
	go func() {
		unlock2, err := Lock(context.Background(), second, "test")
		if err == nil {
			unlock2()
		}
		done <- err
	}()
	<-queued // the second holder waits for the first
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := flockPolls.Load() - before; n != 0 {
		t.Errorf("the second holder found the flock taken %d times; want 0", n)
	}
	gatesMu.Lock()
	defer gatesMu.Unlock()
	if len(gates) != 0 {
		t.Errorf("%d gates left after every holder released", len(gates))
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
