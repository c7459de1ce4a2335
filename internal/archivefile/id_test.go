package archivefile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/fileid"
)

// TestIDFollowsTheContent: opens of the same archive have one ID (compressed or not), and an
// archive replaced by rename has another, so what was read from the old one is not reused.
func TestIDFollowsTheContent(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("files have no inode here: every ID is the zero ID")
	}
	for _, compression := range []string{"", Gzip} {
		t.Run("compression="+compression, func(t *testing.T) {
			t.Parallel()
			dir, tmp := t.TempDir(), t.TempDir()
			path := filepath.Join(dir, "bundle.tar")
			write := func(content string) {
				if err := os.WriteFile(path+".new", compress(t, compression, []byte(content)), 0o644); err != nil {
					t.Fatal(err)
				}
				old := time.Now().Add(-time.Hour) // not modified a moment ago: see fileid.Stable
				if err := os.Chtimes(path+".new", old, old); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(path+".new", path); err != nil {
					t.Fatal(err)
				}
			}
			id := func() fileid.ID {
				f, err := Open(context.Background(), path, tmp)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				return f.ID()
			}
			write("tar content A")
			first, again := id(), id()
			if first.IsZero() || first != again {
				t.Fatalf("two opens of one archive: IDs %+v and %+v, want one, not zero", first, again)
			}
			write("tar content B")
			if after := id(); after == first {
				t.Errorf("the archive was replaced but kept its ID %+v", after)
			}
			if err := os.WriteFile(path, compress(t, compression, []byte("tar content C")), 0o644); err != nil {
				t.Fatal(err)
			}
			if fresh := id(); !fresh.IsZero() {
				t.Errorf("an archive written a moment ago has the ID %+v, want none", fresh)
			}
		})
	}
}

// TestPipeSpoolID: the opens of a pipe that share its spool have the spool's ID, which no
// file has.
func TestPipeSpoolID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc/self/fd")
	}
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.Write(bytes.Repeat([]byte("tar bytes "), 100))
		w.Close()
	}()
	path := "/proc/self/fd/" + strconv.Itoa(int(r.Fd()))
	tmp := t.TempDir()
	a, err := Open(context.Background(), path, tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), path, tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fi, err := r.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if a.ID().IsZero() || a.ID() != b.ID() || a.ID() == fileid.Of(fi) || a.ID() == fileid.Of(fi).Node() {
		t.Errorf("spool IDs %+v, %+v (pipe %+v): want one, of the spool", a.ID(), b.ID(), fileid.Of(fi))
	}
}
