//go:build unix

package staging

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRemoveDead removes what no live handle holds (a dead file, a dead directory with
// content) and keeps what is locked, what the matcher excludes and what is not temporary.
func TestRemoveDead(t *testing.T) {
	dir := t.TempDir()
	live, err := CreateTemp(dir, BlobPattern)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	liveDir, lock, err := MkdirTemp(dir, LayoutPrefix)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	deadDir, deadLock, err := MkdirTemp(dir, LayoutPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deadDir, "sha256-x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadLock.Close() // as if its process had died
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
	want := []string{".tmp-b.tar-other", "blob", filepath.Base(live.Name()), filepath.Base(liveDir)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}
