package atomicfile

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/staging"
)

func TestSyncerSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name         string
		listed, dirs []string
		wantNotExist bool
	}{
		{name: "files and directories", listed: []string{good, good}, dirs: []string{dir}},
		{name: "a listed file is gone", listed: []string{good, missing}, wantNotExist: true},
		{name: "a directory is gone", listed: []string{good}, dirs: []string{missing}, wantNotExist: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := NewSyncer(true).Sync(tc.listed, tc.dirs)
			if got := errors.Is(err, fs.ErrNotExist); got != tc.wantNotExist || (err != nil && !got) {
				t.Fatalf("Sync: %v, want a not-exist error: %v", err, tc.wantNotExist)
			}
		})
	}
}

// stage stages n distinct blobs in dir through s and returns their names.
func stage(t *testing.T, s *Syncer, dir string, n int) []string {
	t.Helper()
	var names []string
	for i := 0; i < n; i++ {
		data := bytes.Repeat([]byte{byte(i)}, 1000+i)
		dg, size, err := s.StageBlob(dir, bytes.NewReader(data), digest.FromBytes(data), int64(len(data)), false, 0, func(d digest.Digest) string {
			return filepath.Join(dir, d.Encoded())
		})
		if err != nil || size != int64(len(data)) {
			t.Fatalf("StageBlob: %d %v", size, err)
		}
		names = append(names, dg.Encoded())
	}
	return names
}

func TestSyncerStagesUnderTheNameAfterSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewSyncer(true)
	names := stage(t, s, dir, 3)
	if err := s.StageFile(filepath.Join(dir, "manifest"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(nil, []string{dir}); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	for i, name := range names {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || len(b) != 1000+i {
			t.Errorf("blob %d: %d bytes, %v", i, len(b), err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "manifest")); err != nil || string(b) != "{}" {
		t.Errorf("manifest: %q, %v", b, err)
	}
}

func TestSyncerReportsAFailedPublish(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewSyncer(true)
	data := []byte("blob")
	_, _, err := s.StageBlob(dir, bytes.NewReader(data), "", -1, false, 0, func(d digest.Digest) string {
		return filepath.Join(dir, "no such directory", d.Encoded())
	})
	if err != nil {
		t.Fatalf("StageBlob: %v", err)
	}
	if err := s.Sync(nil, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Sync: %v, want the rename's not-exist error", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files left after a failed publish", len(entries))
	}
}

func TestSyncerCloseLeavesNoTemporaryFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewSyncer(true)
	stage(t, s, dir, 20)
	s.Close() // each staged blob is either published or discarded
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if staging.IsTemporary(e.Name()) {
			t.Errorf("temporary file %s left after Close", e.Name())
		}
	}
}

func TestScratchSyncerSyncsNothing(t *testing.T) {
	got := recordWriteback(t)
	dir := t.TempDir()
	s := NewSyncer(false)
	names := stage(t, s, dir, 1)
	data := bytes.Repeat([]byte("s"), flushChunk+10)
	if _, _, err := s.StageBlob(dir, bytes.NewReader(data), "", -1, false, 0o644, func(d digest.Digest) string {
		return filepath.Join(dir, d.Encoded())
	}); err != nil {
		t.Fatal(err)
	}
	// Named at once, without waiting for Sync.
	if _, err := os.Stat(filepath.Join(dir, names[0])); err != nil {
		t.Fatalf("scratch blob not named at once: %v", err)
	}
	// A missing file or directory would fail a durable Sync: this one does not look.
	if err := s.Sync([]string{filepath.Join(dir, "missing")}, []string{filepath.Join(dir, "missing")}); err != nil {
		t.Fatalf("scratch Sync: %v", err)
	}
	if r := got(); len(r) != 0 {
		t.Fatalf("scratch writes asked for writeback: %v", r)
	}
}

func TestStageBlobStartsWritebackOfTheTail(t *testing.T) {
	got := recordWriteback(t)
	dir := t.TempDir()
	s := NewSyncer(true)
	stage(t, s, dir, 1)
	if err := s.Sync(nil, nil); err != nil {
		t.Fatal(err)
	}
	if r := got(); len(r) != 1 || r[0] != (span{0, 1000}) {
		t.Fatalf("writeback ranges %v, want the whole blob", r)
	}
}
