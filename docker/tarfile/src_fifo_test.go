//go:build linux

package tarfile

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/imgcopy/imgcopy/types"
)

// TestReadFromFIFO reads an archive that cannot seek (`docker save | imgcopy ...`): it is
// spooled to a temporary file (see internal/archivefile), which is never visible in the
// temporary directory, not even while it is open.
func TestReadFromFIFO(t *testing.T) {
	img := newTestImage(t, 2, "amd64")
	data := buildTar(t, classicMembers(t, img, "a:1"))
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO support: %v", err)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		f.Write(data)
		f.Close()
	}()
	tmp := t.TempDir()
	src, err := openSource(t, fifo, &types.SystemContext{BigFilesTemporaryDir: tmp}, "a:1", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.GetManifest(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("spooled file visible while open: %v", left)
	}
	src.Close()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("spooled file left after Close: %v", left)
	}
}
