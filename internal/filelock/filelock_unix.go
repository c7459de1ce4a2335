//go:build unix

// Package filelock takes exclusive advisory locks (flock) that wait while another process
// holds them and give up when the context ends.
package filelock

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
)

// Lock takes an exclusive flock on f, polling with a growing delay (at most 100 ms) while
// another holder has it. Closing f releases the lock. what names the locked object in errors.
func Lock(ctx context.Context, f *os.File, what string) error {
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return errors.Wrapf(err, "locking %s", what)
		}
		logrus.WithField("lock", what).Debug("waiting for another writer's lock")
		select {
		case <-ctx.Done():
			return errors.Wrapf(ctx.Err(), "waiting for the lock on %s", what)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}
