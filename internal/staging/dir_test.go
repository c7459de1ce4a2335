//go:build unix

package staging

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAbandoned: the staging directory of a live writer (its lock held) is left alone; one
// whose writer died (lock released without Remove, as by SIGKILL) is returned, locked, and
// a young directory without a lock file (being created) is left alone too.
func TestAbandoned(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	live, err := NewDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	dead, err := NewDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead.Path, "blob"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead.lock.Close() // the process died: its lock is gone, its files stay
	creating := filepath.Join(parent, LayoutPrefix+"creating")
	if err := os.Mkdir(creating, 0o700); err != nil {
		t.Fatal(err)
	}
	got := Abandoned(parent)
	if len(got) != 1 || got[0].Path != dead.Path {
		t.Fatalf("Abandoned = %v, want only %s", got, dead.Path)
	}
	if again := Abandoned(parent); len(again) != 0 {
		t.Fatalf("a directory being taken over was returned twice: %v", again)
	}
	if err := got[0].Remove(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * unlockedGrace)
	if err := os.Chtimes(creating, old, old); err != nil {
		t.Fatal(err)
	}
	RemoveAbandoned(parent)
	for _, p := range []string{dead.Path, creating} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if _, err := os.Stat(live.Path); err != nil {
		t.Errorf("the live writer's directory was removed: %v", err)
	}
}

// TestArchiveOf: a staging directory belongs to the archive whose replacement it holds
// (ReplacementPattern: .tmp-NAME-DIGITS), and to none when it holds no such file.
func TestArchiveOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{LockName, ".tmp-a.tar-123", ".fill-abc"}, "a.tar"},
		{[]string{LockName, ".tmp-my-images.tar.gz-4567"}, "my-images.tar.gz"},
		{[]string{LockName}, ""},
		{[]string{LockName, ".tmp-blob-99"}, ""},   // a spooled blob, not an archive
		{[]string{LockName, ".tmp-a.tar-x12"}, ""}, // not a CreateTemp name
		{nil, ""},
	} {
		dir := t.TempDir()
		for _, f := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got := ArchiveOf(dir); got != tc.want {
			t.Errorf("ArchiveOf(%q) = %q, want %q", tc.files, got, tc.want)
		}
	}
}
