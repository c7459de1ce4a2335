package archivefile

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/fileid"
)

func compress(t *testing.T, compression string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch compression {
	case Gzip:
		w = gzip.NewWriter(&buf)
	case Zstd:
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		return data
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t *testing.T, f *File) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spoolFDs lists the open files of this process that are spools in dir (unlinked: Linux
// shows them as "PATH (deleted)").
func spoolFDs(t *testing.T, dir string) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc/self/fd")
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	var res []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			res = append(res, target)
		}
	}
	return res
}

// TestOpenDetectsCompressionByContent: whatever the name, a gzip or zstd file reads as the
// tar inside it, from a spool that is never visible in the temporary directory and is shared
// by concurrent opens of the same file.
func TestOpenDetectsCompressionByContent(t *testing.T) {
	data := bytes.Repeat([]byte("tar content "), 10000)
	for _, compression := range []string{"", Gzip, Zstd} {
		t.Run("compression="+compression, func(t *testing.T) {
			dir, tmp := t.TempDir(), t.TempDir()
			path := filepath.Join(dir, "bundle.tar") // the name says nothing
			if err := os.WriteFile(path, compress(t, compression, data), 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := Open(context.Background(), path, tmp)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(context.Background(), path, tmp)
			if err != nil {
				t.Fatal(err)
			}
			if a.Compression() != compression || !bytes.Equal(readAll(t, a), data) || !bytes.Equal(readAll(t, b), data) {
				t.Fatalf("read %q compression, content equal: %v", a.Compression(), bytes.Equal(readAll(t, a), data))
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("spool visible in the temporary directory: %v", left)
			}
			want := 0
			if compression != "" {
				want = 1
			}
			if fds := spoolFDs(t, tmp); len(fds) != want {
				t.Errorf("open spools %v, want %d shared by both opens", fds, want)
			}
			a.Close()
			b.Close()
		})
	}
}

// TestSpoolLingersThenCloses: a spool outlives its last user by spoolLinger, so that the
// next open reuses it, and is closed after that.
func TestSpoolLingersThenCloses(t *testing.T) {
	var expire func()
	afterFunc = func(d time.Duration, f func()) *time.Timer {
		if d != spoolLinger {
			t.Errorf("timer armed for %v, want %v", d, spoolLinger)
		}
		expire = f
		return time.NewTimer(time.Hour)
	}
	t.Cleanup(func() { afterFunc = time.AfterFunc })
	dir, tmp := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "b.tar.gz")
	if err := os.WriteFile(path, compress(t, Gzip, []byte("x")), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(context.Background(), path, tmp)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fds := spoolFDs(t, tmp); len(fds) != 1 {
		t.Fatalf("spool closed with its last user: %v", fds)
	}
	g, err := Open(context.Background(), path, tmp) // within the linger: the same spool
	if err != nil {
		t.Fatal(err)
	}
	if fds := spoolFDs(t, tmp); len(fds) != 1 {
		t.Fatalf("spools %v, want the lingering one reused", fds)
	}
	g.Close()
	expire()
	if fds := spoolFDs(t, tmp); len(fds) != 0 {
		t.Errorf("spool still open after the linger: %v", fds)
	}
}

// TestCorruptCompressedFile: a truncated gzip file fails with an error naming it, and leaves
// no spool behind.
func TestCorruptCompressedFile(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "broken.tar")
	gz := compress(t, Gzip, bytes.Repeat([]byte("y"), 1<<16))
	if err := os.WriteFile(path, gz[:len(gz)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path, tmp); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("want an error naming %s, got %v", path, err)
	}
	if fds := spoolFDs(t, tmp); len(fds) != 0 {
		t.Errorf("spool left open: %v", fds)
	}
	if _, err := Open(context.Background(), path, tmp); err == nil { // a failed spool is not cached
		t.Fatal("second open of a broken file succeeded")
	}
}

func TestForWriting(t *testing.T) {
	for _, tc := range []struct{ path, setting, want string }{
		{"a.tar", "", ""}, {"a.tar.gz", "", Gzip}, {"a.tgz", "", Gzip}, {"a.tar.zst", "", Zstd}, {"a.tzst", "", Zstd},
		{"a.tar", "zstd", Zstd}, {"a.tar.gz", "none", ""}, {"a.tar", "gzip", Gzip},
	} {
		if got, err := ForWriting(tc.path, tc.setting); err != nil || got != tc.want {
			t.Errorf("ForWriting(%q, %q) = %q, %v; want %q", tc.path, tc.setting, got, err, tc.want)
		}
	}
	if _, err := ForWriting("a.tar", "lz4"); err == nil {
		t.Error("unknown compression accepted")
	}
}

// TestPipeOpenedTwice: a bundle read from a pipe (`zstdcat bundle.tar.zst | imgcopy verify
// oci-archive:/dev/stdin`) is opened once to list its images and again for each image; the
// pipe can be read only once, so every open shares the first one's spool.
func TestPipeOpenedTwice(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc/self/fd")
	}
	for _, compression := range []string{"", Zstd} {
		t.Run("compression="+compression, func(t *testing.T) {
			data := bytes.Repeat([]byte("tar bytes "), 10000)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			go func() {
				w.Write(compress(t, compression, data))
				w.Close()
			}()
			path := "/proc/self/fd/" + strconv.Itoa(int(r.Fd()))
			tmp := t.TempDir()
			for i := range 2 {
				f, err := Open(context.Background(), path, tmp)
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				if got := readAll(t, f); !bytes.Equal(got, data) || f.Compression() != compression {
					t.Errorf("open %d read %d bytes (compression %q), want %d (%q)", i, len(got), f.Compression(), len(data), compression)
				}
				f.Close()
			}
		})
	}
}

// TestCloseTwice: a File may be closed more than once (an embedder's explicit Close of an
// archive source followed by a deferred one); only the first closes anything.
func TestCloseTwice(t *testing.T) {
	data := bytes.Repeat([]byte("tar content "), 1000)
	for _, compression := range []string{"", Gzip} {
		t.Run("compression="+compression, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.tar")
			if err := os.WriteFile(path, compress(t, compression, data), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(context.Background(), path, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// cancelAfter cancels a context once n bytes were read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	k, err := c.r.Read(p)
	c.n -= k
	return k, err
}

// TestSpoolStopsWhenCancelled: decompressing a big compressed archive into its spool stops
// when the open's context is done (a copy from a 10 GiB .tar.gz must not run on for minutes
// after it was cancelled), leaves no spool, and is not cached: the next open spools again.
func TestSpoolStopsWhenCancelled(t *testing.T) {
	data := bytes.Repeat([]byte("tar content "), 1<<18) // 3 MiB: many reads
	gz := compress(t, Gzip, data)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tmp := t.TempDir()
	_, err := spool(ctx, &cancelAfter{r: bytes.NewReader(gz), n: 4 << 10, cancel: cancel}, Gzip, "big.tar.gz", tmp)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("spool cancelled after 4 KiB: %v, want context.Canceled", err)
	}
	if fds := spoolFDs(t, tmp); len(fds) != 0 {
		t.Errorf("spool left open: %v", fds)
	}

	path := filepath.Join(t.TempDir(), "big.tar.gz")
	if err := os.WriteFile(path, gz, 0o644); err != nil {
		t.Fatal(err)
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := Open(done, path, tmp); !errors.Is(err, context.Canceled) {
		t.Fatalf("open with a cancelled context: %v, want context.Canceled", err)
	}
	f, err := Open(context.Background(), path, tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !bytes.Equal(readAll(t, f), data) {
		t.Error("the open after a cancelled one read other content")
	}
}

// TestSpoolCancelledForAWaiter: an open waiting for the spool another open of the same file
// is making does not fail when that open is cancelled: it makes the spool itself.
func TestSpoolCancelledForAWaiter(t *testing.T) {
	key := fileid.New()
	users := func() int {
		spools.Lock()
		defer spools.Unlock()
		if e := spools.m[key]; e != nil {
			return e.users
		}
		return -1
	}
	first := make(chan error, 1)
	go func() {
		_, err := shared(key, func() (*File, error) {
			for i := 0; users() < 1 && i < 1e6; i++ { // until the second open waits
				runtime.Gosched()
			}
			return nil, errors.Wrap(context.Canceled, "decompressing")
		})
		first <- err
	}()
	for i := 0; users() != 0 && i < 1e6; i++ { // until the first open makes the spool
		runtime.Gosched()
	}
	want := &File{ra: bytes.NewReader(nil), close: func() error { return nil }}
	got, err := sharedFile(context.Background(), key, func() (*File, error) { return want, nil })
	if err != nil || got.ra != want.ra {
		t.Fatalf("waiting open: %v, %v; want the spool it made after the first was cancelled", got, err)
	}
	got.Close()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled open: %v", err)
	}
}
