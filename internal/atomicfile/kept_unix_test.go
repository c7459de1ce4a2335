//go:build unix

package atomicfile

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
)

// TestStageKeptBlobAcrossFileSystems stages from a file on another file system than the
// staged name's (/dev/shm, a tmpfs, when there is one): the blob is copied, verified, and
// the kept file removed.
func TestStageKeptBlobAcrossFileSystems(t *testing.T) {
	keepDir, err := os.MkdirTemp("/dev/shm", "kept-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(keepDir)
	stageDir := t.TempDir()
	var a, b syscall.Stat_t
	if syscall.Stat(keepDir, &a) != nil || syscall.Stat(stageDir, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm and the test's temporary directory are on one file system")
	}
	data := bytes.Repeat([]byte("cross-device "), 10000)
	good := digest.FromBytes(data)
	f := keptFile(t, keepDir, data[:5000])
	s := NewSyncer(true)
	if _, _, resumed, err := s.StageKeptBlob(f, 5000, bytes.NewReader(data), good, int64(len(data)), false, 0, func(d digest.Digest) string {
		return filepath.Join(stageDir, d.Encoded())
	}); err != nil || resumed != 5000 {
		t.Fatalf("resumed %d, %v", resumed, err)
	}
	if err := s.Sync(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(stageDir, good.Encoded())); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("staged file: %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the kept file was not removed after the copy (%v)", err)
	}
}
