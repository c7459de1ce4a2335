package dir

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

func TestDeleteTag(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(store, "team/app:1", manifestFile), "{}")
	write(filepath.Join(store, "team/app:2", manifestFile), "{}")
	write(filepath.Join(store, "team/notes", "README"), "not an image")
	if err := os.Symlink("/etc/hostname", filepath.Join(store, "team/notes", manifestFile)); err != nil {
		t.Fatal(err)
	}

	if err := (reference{path: filepath.Join(store, "team/app:1")}).DeleteTag(context.Background(), nil); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	err := (reference{path: filepath.Join(store, "team/missing")}).DeleteTag(context.Background(), nil)
	if !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("DeleteTag of a directory that does not exist: %v, want ErrManifestNotFound", err)
	}
	if err := (reference{path: filepath.Join(store, "team/notes")}).DeleteTag(context.Background(), nil); err == nil {
		t.Error("DeleteTag removed a directory whose manifest.json is a symlink")
	}
	entries, err := os.ReadDir(filepath.Join(store, "team"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if err != nil || len(names) != 2 || names[0] != "app:2" || names[1] != "notes" {
		t.Errorf("after deleting app:1, team/ holds %v (%v); want app:2 and notes, no staging directory", names, err)
	}
}

// TestDeleteLeavesArchiveStaging: a delete removes what killed deletes left beside the image,
// not the unfinished tar a killed copy into an archive in the same directory left, which the
// next copy into that archive resumes from.
func TestDeleteLeavesArchiveStaging(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	img := filepath.Join(parent, "app")
	if err := os.MkdirAll(img, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(img, manifestFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead := map[string]string{ // a dead writer's staging directory (its lock not held) → its file
		"archive": staging.ReplacementPrefix(filepath.Join(parent, "bundle.tar")) + "1",
		"delete":  "image",
	}
	for name, file := range dead {
		p := filepath.Join(parent, staging.LayoutPrefix+name)
		for _, f := range []string{staging.LockName, file} {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := (reference{path: img}).DeleteTag(context.Background(), nil); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	for name, want := range map[string]bool{"archive": true, "delete": false} {
		_, err := os.Stat(filepath.Join(parent, staging.LayoutPrefix+name))
		if got := err == nil; got != want {
			t.Errorf("the dead %s's staging directory is there: %v, want %v", name, got, want)
		}
	}
}
