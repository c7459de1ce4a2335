//go:build !unix

package archive

import "context"

// lockDir is a no-op where flock is unavailable; concurrent writers of one archive are then unsafe.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	return func() {}, nil
}
