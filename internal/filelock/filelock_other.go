//go:build !unix

// Package filelock takes exclusive advisory locks (flock) that wait while another process
// holds them and give up when the context ends.
package filelock

import (
	"context"
	"os"

	"github.com/sirupsen/logrus"
)

// Lock is a no-op where flock is unavailable; concurrent writers are then unsafe.
func Lock(ctx context.Context, f *os.File, what string) (unlock func(), err error) {
	logrus.WithField("lock", what).Debug("no file locking on this platform")
	return func() {}, nil
}
