//go:build unix

package tarstore

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/staging"
)

// TestSalvage: a store created with Resume takes the complete, intact blobs of a tar that a
// killed writer left unfinished (after a gap of zeros, too), refuses an altered one, and
// removes the dead writer's staging directory when it ends.
func TestSalvage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, gap, altered := bytes.Repeat([]byte("g"), 3000), bytes.Repeat([]byte("p"), 700), bytes.Repeat([]byte("a"), 1000)
	dead := filepath.Join(dir, staging.LayoutPrefix+"killed") // its lock file is not held
	if err := os.Mkdir(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	member := func(b []byte, content []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "blobs/sha256/" + digest.FromBytes(b).Encoded(), Size: int64(len(content)), Format: tar.FormatPAX})
		tw.Write(content)
		tw.Flush()
	}
	member(good, good)
	buf.Write(make([]byte, 4096)) // a region reserved for a blob that never finished
	member(gap, gap)
	member(altered, bytes.ToUpper(altered))
	for name, b := range map[string][]byte{".lock": nil, "unfinished.tar": buf.Bytes()} {
		if err := os.WriteFile(filepath.Join(dead, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	s, err := Create(filepath.Join(dir, "out.tar"), Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		b    []byte
		want bool
	}{{good, true}, {gap, true}, {altered, false}, {[]byte("never written"), false}} {
		d := digest.FromBytes(tc.b)
		b, ok := s.Salvage(ctx, d, int64(len(tc.b)), "blobs/sha256/"+d.Encoded())
		if ok != tc.want || (ok && b.Size != int64(len(tc.b))) {
			t.Errorf("Salvage(%.10q) = %+v, %v; want %v", tc.b, b, ok, tc.want)
		}
		if ok {
			got, err := s.ReadBlob(d, 1<<20)
			if err != nil || !bytes.Equal(got, tc.b) {
				t.Errorf("salvaged blob reads back as %.10q (%v)", got, err)
			}
		}
	}
	if err := s.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead writer's staging directory is still there: %v", err)
	}
}

// cancelAfter serves data, and once n bytes went by cancels the context and fails as a reader
// of a cancelled stream does; with cancel nil it fails with a plain error instead.
type cancelAfter struct {
	data   []byte
	n, off int
	cancel context.CancelFunc
}

var errBroke = errors.New("the stream broke")

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.off >= c.n {
		if c.cancel == nil {
			return 0, errBroke
		}
		c.cancel()
		return 0, context.Canceled
	}
	k := copy(p, c.data[c.off:min(c.n, len(c.data))])
	c.off += k
	return k, nil
}

// TestKeepsBegunBlob: with Resume, a blob whose Put is interrupted (its context ends) keeps
// what arrived in the unfinished tar, which Abort leaves; the next store offers those bytes
// (KeepsPartial), a whole number of fill records' worth, and takes the staging over. A Put
// that fails otherwise (beside a complete 4 MiB blob), a small blob and a store without
// Resume keep nothing.
func TestKeepsBegunBlob(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), (resume.MinSize+3*fillRecordEvery/2)/16)
	d := digest.FromBytes(big)
	size := int64(len(big))
	interrupt := func(t *testing.T, dir string, opts Options, failAt int, cancelled bool) {
		t.Helper()
		s, err := Create(filepath.Join(dir, "out.tar"), opts)
		if err != nil {
			t.Fatal(err)
		}
		filler := bytes.Repeat([]byte("f"), resume.MinSize) // a complete blob worth keeping
		put(t, s, filler, digest.FromBytes(filler), int64(len(filler)))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := &cancelAfter{data: big, n: failAt}
		if cancelled {
			r.cancel = cancel
		}
		if _, _, err := s.Put(ctx, r, d, size, false, member); err == nil {
			t.Fatal("Put of a broken stream succeeded")
		}
		s.Abort()
	}
	next := func(t *testing.T, dir string, opts Options) *Store {
		t.Helper()
		s, err := Create(filepath.Join(dir, "out.tar"), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Abort)
		return s
	}
	stagings := func(dir string) int {
		m, _ := filepath.Glob(filepath.Join(dir, staging.LayoutPrefix+"*"))
		return len(m)
	}

	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		failAt := 2*fillRecordEvery + 12345
		interrupt(t, dir, Options{Resume: true}, failAt, true)
		if n := stagings(dir); n != 1 {
			t.Fatalf("%d staging directories after the interruption, want the unfinished archive's", n)
		}
		s := next(t, dir, Options{Resume: true})
		keeps, prefix, n := s.KeepsPartial(d, size)
		if !keeps || prefix == nil || n != 2*fillRecordEvery {
			t.Fatalf("KeepsPartial = %v, %v, %d; want true, the first %d bytes", keeps, prefix != nil, n, 2*fillRecordEvery)
		}
		got, err := io.ReadAll(prefix)
		if err != nil || !bytes.Equal(got, big[:n]) {
			t.Errorf("the kept bytes read back wrong (%d bytes, %v)", len(got), err)
		}
		prefix.Close()
		if keeps, _, _ := s.KeepsPartial(d, size+1); !keeps {
			t.Error("a blob of another size is not kept")
		}
		if keeps, _, _ := s.KeepsPartial(d, resume.MinSize-1); keeps {
			t.Error("a blob under resume.MinSize is kept")
		}
		put(t, s, big, d, size)
		if err := s.Commit(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if n := stagings(dir); n != 0 {
			t.Errorf("%d staging directories after the commit", n)
		}
	})
	t.Run("broken", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		interrupt(t, dir, Options{Resume: true}, 2*fillRecordEvery+12345, false)
		if n := stagings(dir); n != 0 {
			t.Errorf("%d staging directories after a failure that was no interruption", n)
		}
		if keeps, prefix, n := next(t, dir, Options{Resume: true}).KeepsPartial(d, size); !keeps || prefix != nil || n != 0 {
			t.Errorf("KeepsPartial = %v, %v, %d; want true, nothing kept", keeps, prefix != nil, n)
		}
	})
	t.Run("no resume", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		interrupt(t, dir, Options{}, 2*fillRecordEvery+12345, true)
		if n := stagings(dir); n != 0 {
			t.Errorf("%d staging directories after an interruption without Resume", n)
		}
		if keeps, _, _ := next(t, dir, Options{}).KeepsPartial(d, size); keeps {
			t.Error("a store without Resume keeps blobs")
		}
	})
}
