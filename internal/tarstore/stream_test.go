//go:build unix

package tarstore

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// TestResolveDestination: a regular file, a new path and a directory are written (or refused)
// in place; a symlink to a regular file replaces the file it leads to, keeping the symlink; a
// pipe, a symlink to one and a symlink that leads nowhere yet are streamed into.
func TestResolveDestination(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	must(t, os.WriteFile(p("regular.tar"), []byte("x"), 0o644))
	must(t, syscall.Mkfifo(p("fifo"), 0o600))
	must(t, os.Symlink("regular.tar", p("link.tar")))
	must(t, os.Symlink("fifo", p("link-fifo")))
	must(t, os.Symlink("missing.tar", p("dangling.tar")))
	cases := []struct {
		path     string
		want     string
		wantPipe bool
	}{
		{p("regular.tar"), p("regular.tar"), false},
		{p("new.tar"), p("new.tar"), false},
		{dir, dir, false},
		{p("link.tar"), p("regular.tar"), false},
		{p("fifo"), p("fifo"), true},
		{p("link-fifo"), p("link-fifo"), true},
		{p("dangling.tar"), p("dangling.tar"), true},
	}
	for _, tc := range cases {
		d, err := ResolveDestination(tc.path)
		if err != nil || d.Path != tc.want || d.Stream != tc.wantPipe {
			t.Errorf("ResolveDestination(%s) = %+v, %v; want %s, stream %v", filepath.Base(tc.path), d, err, filepath.Base(tc.want), tc.wantPipe)
		}
	}
}

// TestStreamedArchive: a streamed store stages outside the pipe's directory and writes the
// whole tar into the pipe at Commit, leaving nothing behind.
func TestStreamedArchive(t *testing.T) {
	t.Parallel()
	dir, tmp := t.TempDir(), t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	must(t, syscall.Mkfifo(fifo, 0o600))
	s, err := Create(fifo, Options{TempDir: tmp, Stream: true})
	must(t, err)
	blob := []byte("streamed blob")
	d := digest.FromBytes(blob)
	put(t, s, blob, d, int64(len(blob)))
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	must(t, s.Commit(t.Context(), nil))
	_, content := readTar(t, bytes.NewReader(<-got))
	if string(content[member(d)]) != string(blob) {
		t.Errorf("the pipe carried %v, want the blob as %s", content, member(d))
	}
	for _, d := range []string{dir, tmp} {
		if entries, _ := os.ReadDir(d); (d == dir && len(entries) != 1) || (d == tmp && len(entries) != 0) {
			t.Errorf("%s holds %d entries after the commit", d, len(entries))
		}
	}
}
