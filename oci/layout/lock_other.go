//go:build !unix

package layout

import (
	"context"
	"os"

	"github.com/sirupsen/logrus"
)

// lockLayout is a no-op where flock is unavailable; concurrent writers are then unsafe.
func lockLayout(ctx context.Context, root *os.Root, where string) (unlock func(), err error) {
	logrus.WithField("layout", where).Debug("no file locking on this platform")
	return func() {}, nil
}
