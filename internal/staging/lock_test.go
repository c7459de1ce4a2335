//go:build unix

package staging

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRemoveDead removes the temporary files no live handle holds and keeps what is locked,
// what the matcher excludes, what is not temporary and every staging directory (live or
// dead: Abandoned takes those, so that their verified blobs can be reused).
func TestRemoveDead(t *testing.T) {
	dir := t.TempDir()
	live, err := CreateTemp(dir, BlobPattern)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	liveDir, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer liveDir.Remove()
	deadDir, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	deadDir.lock.Close() // as if its process had died
	for _, name := range []string{".tmp-blob-dead", ".tmp-a.tar-dead", "blob", ".tmp-b.tar-other"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	RemoveDead(dir, func(name string) bool { return name != ".tmp-b.tar-other" })
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{".tmp-b.tar-other", "blob", filepath.Base(live.Name()), filepath.Base(liveDir.Path), filepath.Base(deadDir.Path)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}
