package layout

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestWrittenFilesMode: every file of a written layout, blobs included, has the mode a file
// os.WriteFile creates with 0644 gets (0644 less the umask), as skopeo's layouts do; blobs
// were left 0600, unreadable by other users, by the private temporary files they start as.
func TestWrittenFilesMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ref, err := NewReference(filepath.Join(dir, "layout"), "app:1")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, ref, testImage(t, imgspecv1.MediaTypeImageManifest, "amd64"))
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want := mustMode(t, probe)
	n := 0
	err = filepath.WalkDir(filepath.Join(dir, "layout"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() == LockFile {
			return err
		}
		n++
		if got := mustMode(t, p); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
		return nil
	})
	if err != nil || n < 5 {
		t.Fatalf("walked %d files: %v", n, err)
	}
}

func mustMode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
