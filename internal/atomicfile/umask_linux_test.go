//go:build linux

package atomicfile

import (
	"os"
	"syscall"
	"testing"
)

// TestReadUmask reads the umask set for the test, without changing it. Not parallel: the
// umask belongs to the process.
func TestReadUmask(t *testing.T) {
	for _, m := range []int{0o077, 0o027, 0o002} {
		old := syscall.Umask(m)
		got := readUmask()
		syscall.Umask(old)
		if got != os.FileMode(m) {
			t.Errorf("umask %#o read as %#o", m, got)
		}
	}
}
