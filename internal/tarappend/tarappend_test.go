package tarappend

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
)

func newFile(t *testing.T) (*File, *os.File) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "out.tar"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return New(f), f
}

func hdr(name string, size int) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(size), Mode: 0o644, Format: tar.FormatPAX}
}

// members closes t and reads the tar back: names in order and their contents.
func members(t *testing.T, tf *File, f *os.File) ([]string, map[string]string) {
	t.Helper()
	if err := tf.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var names []string
	contents := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, contents
		}
		if err != nil {
			t.Fatalf("reading the tar back: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", h.Name, err)
		}
		names = append(names, h.Name)
		contents[h.Name] = string(b)
	}
}

func mustReserve(t *testing.T, tf *File, name string, size int) *Region {
	t.Helper()
	r, err := tf.Reserve(hdr(name, size))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAppendAndReadBack(t *testing.T) {
	tf, f := newFile(t)
	off, err := tf.Append(hdr("a", 3), strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	if _, err := tf.ReadAt(b, off); err != nil || string(b) != "abc" {
		t.Fatalf("ReadAt at the content offset: %q, %v", b, err)
	}
	names, contents := members(t, tf, f)
	if len(names) != 1 || contents["a"] != "abc" {
		t.Fatalf("members %v %v", names, contents)
	}
}

func TestFailedAppendIsCutOff(t *testing.T) {
	tf, f := newFile(t)
	boom := errors.New("stream broke")
	if _, err := tf.Append(hdr("ok1", 2), strings.NewReader("xy")); err != nil {
		t.Fatal(err)
	}
	failing := io.MultiReader(strings.NewReader(strings.Repeat("z", 700)), &errAfter{err: boom})
	if _, err := tf.Append(hdr("bad", 2000), failing); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the stream's error", err)
	}
	if _, err := tf.Append(hdr("ok2", 1), strings.NewReader("q")); err != nil {
		t.Fatal(err)
	}
	names, contents := members(t, tf, f)
	if strings.Join(names, ",") != "ok1,ok2" || contents["ok2"] != "q" {
		t.Fatalf("members %v", names)
	}
}

// errAfter hands over bytes together with an error, as a verifying reader does on the read
// that exposes a mismatch.
type errAfter struct {
	err  error
	data string
}

func (e *errAfter) Read(p []byte) (int, error) { return copy(p, e.data), e.err }

func TestSourceErrorWinsOverTarErrors(t *testing.T) {
	tf, _ := newFile(t)
	mismatch := errors.New("digest mismatch")
	// The source holds more than the member's size and reports it with those bytes: the
	// error must be the source's, not the tar writer's "write too long".
	src := io.MultiReader(strings.NewReader("abc"), &errAfter{err: mismatch, data: "defgh"})
	if _, err := tf.Append(hdr("a", 3), src); !errors.Is(err, mismatch) {
		t.Fatalf("Append: %v, want the source's error", err)
	}
	r := mustReserve(t, tf, "b", 3)
	src = io.MultiReader(strings.NewReader("abc"), &errAfter{err: mismatch, data: "defgh"})
	if err := tf.Done(r, r.Fill(src)); !errors.Is(err, mismatch) {
		t.Fatalf("Fill: %v, want the source's error", err)
	}
}

func TestRegionsFillInAnyOrder(t *testing.T) {
	tf, f := newFile(t)
	a := mustReserve(t, tf, "a", 1000)
	b := mustReserve(t, tf, "b", 5)
	if _, err := tf.Append(hdr("c", 2), strings.NewReader("cc")); err != nil {
		t.Fatal(err)
	}
	if err := tf.Done(b, b.Fill(strings.NewReader("bbbbb"))); err != nil {
		t.Fatal(err)
	}
	if err := tf.Done(a, a.Fill(strings.NewReader(strings.Repeat("a", 1000)))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := tf.ReadAt(got, b.ContentOffset()); err != nil || string(got) != "bbbbb" {
		t.Fatalf("content of b at its offset: %q, %v", got, err)
	}
	names, contents := members(t, tf, f)
	if strings.Join(names, ",") != "a,b,c" || contents["a"] != strings.Repeat("a", 1000) || contents["b"] != "bbbbb" || contents["c"] != "cc" {
		t.Fatalf("members %v", names)
	}
}

func TestFailedRegion(t *testing.T) {
	boom := errors.New("stream broke")
	t.Run("last member is cut off", func(t *testing.T) {
		tf, f := newFile(t)
		a := mustReserve(t, tf, "a", 600)
		if err := tf.Done(a, a.Fill(io.MultiReader(strings.NewReader("xx"), &errAfter{err: boom}))); !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		if _, err := tf.Append(hdr("b", 1), strings.NewReader("b")); err != nil {
			t.Fatal(err)
		}
		names, _ := members(t, tf, f)
		if strings.Join(names, ",") != "b" {
			t.Fatalf("members %v, want only b", names)
		}
	})
	t.Run("member with others after it is discarded", func(t *testing.T) {
		tf, f := newFile(t)
		a := mustReserve(t, tf, "a", 600)
		b := mustReserve(t, tf, "b", 2)
		if err := tf.Done(b, b.Fill(strings.NewReader("bb"))); err != nil {
			t.Fatal(err)
		}
		if err := tf.Done(a, a.Fill(io.MultiReader(strings.NewReader("xx"), &errAfter{err: boom}))); !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		names, contents := members(t, tf, f)
		if len(names) != 2 || !strings.HasPrefix(names[0], ".imgcopy-discarded-") || names[1] != "b" || contents["b"] != "bb" {
			t.Fatalf("members %v", names)
		}
	})
	t.Run("what is written is reported", func(t *testing.T) {
		tf, _ := newFile(t)
		a := mustReserve(t, tf, "a", 600)
		var written []int64
		a.OnWritten = func(n int64) { written = append(written, n) }
		if err := tf.Done(a, a.Fill(io.MultiReader(strings.NewReader("xx"), strings.NewReader("yyy"), &errAfter{err: boom}))); !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		if !slices.Equal(written, []int64{2, 5}) {
			t.Errorf("OnWritten saw %v, want [2 5]", written)
		}
	})
	t.Run("wrong length", func(t *testing.T) {
		tf, _ := newFile(t)
		long := mustReserve(t, tf, "long", 2)
		if err := long.Fill(strings.NewReader("xyz")); err == nil || !strings.Contains(err.Error(), "longer than its size") {
			t.Fatalf("too long: %v", err)
		}
		short := mustReserve(t, tf, "short", 4)
		if err := short.Fill(strings.NewReader("xyz")); err == nil || !strings.Contains(err.Error(), "3 bytes, 4 expected") {
			t.Fatalf("too short: %v", err)
		}
	})
}

func TestRegionHeaderWithLongName(t *testing.T) {
	tf, f := newFile(t)
	name := "blobs/sha256/" + strings.Repeat("0123456789abcdef", 8) // needs a PAX record
	r := mustReserve(t, tf, name, 3)
	if err := tf.Done(r, r.Fill(bytes.NewReader([]byte("abc")))); err != nil {
		t.Fatal(err)
	}
	names, contents := members(t, tf, f)
	if len(names) != 1 || names[0] != name || contents[name] != "abc" {
		t.Fatalf("members %v", names)
	}
}

// A member whose background data sync failed is a failed member: Linux reports a write-back
// error once per descriptor, so the tar's own fsync at the end may not see it again.
func TestFillFailsWhenASyncBehindFailed(t *testing.T) {
	eio := errors.New("input/output error")
	defer atomicfile.ReplaceDataSyncForTest(func(*os.File) error { return eio })()
	tf, f := newFile(t)
	tf.SyncBehind = true
	const size = 64<<20 + 1 // past the first background data sync
	r := mustReserve(t, tf, "big", size)
	err := tf.Done(r, r.Fill(io.LimitReader(zeros{}, size)))
	if !errors.Is(err, eio) {
		t.Fatalf("Fill of a member whose data sync failed: %v, want the sync's error", err)
	}
	if names, _ := members(t, tf, f); len(names) != 0 {
		t.Errorf("members %v, want none", names)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
