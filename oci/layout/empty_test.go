package layout

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

// TestDirectoryWithoutLayoutYet: a directory that holds no layout yet (empty, as a user
// creates it or an interrupted sync into it leaves it, or holding only what writers of a new
// layout create, up to oci-layout and blobs without index.json) holds no image: listing it, its tags or an image's digest is "not found", so
// that a sync into it copies, as a copy into it does. A directory holding anything else is
// not a layout.
func TestDirectoryWithoutLayoutYet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		files    []string
		notFound bool
	}{
		{"empty", nil, true},
		{"a writer's staging and lock", []string{staging.LayoutPrefix + "1/" + staging.LockName, LockFile}, true},
		// A writer committing the first image has written oci-layout and blobs, not yet
		// index.json: a sync beside it failed every image as an invalid layout.
		{"a writer committing the first image", []string{LayoutFile, "blobs/sha256/00", LockFile}, true},
		{"other files", []string{"notes.txt"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
					t.Fatal(err)
				}
				var b []byte
				if f == LayoutFile {
					b = []byte(`{"imageLayoutVersion":"1.0.0"}`)
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			r := newReference(dir, "app:1", "")
			_, err1 := r.ListImages(ctx, nil)
			_, err2 := r.ListTags(ctx, nil)
			_, err3 := r.ManifestDigest(ctx, nil)
			for i, err := range []error{err1, err2, err3} {
				want := ErrInvalidLayout
				if tc.notFound {
					want = types.ErrManifestNotFound
				}
				if !errors.Is(err, want) {
					t.Errorf("call %d: %v, want %v", i, err, want)
				}
			}
		})
	}
}
