package tarstore

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

func member(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }

// gatedReader serves data; before its last byte it reports that it started and waits for
// release (bounded, so that a broken store fails the test instead of hanging it).
type gatedReader struct {
	data    []byte
	started chan struct{}
	release chan struct{}
	off     int
}

func newGatedReader(data []byte) *gatedReader {
	return &gatedReader{data: data, started: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.off == 0 {
		close(g.started)
	}
	if g.off == len(g.data)-1 {
		select {
		case <-g.release:
		case <-time.After(30 * time.Second):
			return 0, errors.New("never released: the other blob could not be written meanwhile")
		}
	}
	if g.off == len(g.data) {
		return 0, io.EOF
	}
	end := len(g.data) - 1
	if g.off == end {
		end = len(g.data)
	}
	n := copy(p, g.data[g.off:end])
	g.off += n
	return n, nil
}

// putInBackground starts Put of gr and returns once gr is being read.
func putInBackground(s *Store, gr *gatedReader, d digest.Digest) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Put(context.Background(), gr, d, int64(len(gr.data)), false, member)
		done <- err
	}()
	<-gr.started
	return done
}

func newStore(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.tar")
	s, err := Create(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Abort)
	return s, path
}

func put(t *testing.T, s *Store, data []byte, d digest.Digest, size int64) {
	t.Helper()
	gd, gs, err := s.Put(context.Background(), bytes.NewReader(data), d, size, false, member)
	if err != nil {
		t.Fatal(err)
	}
	if gd != digest.FromBytes(data) || gs != int64(len(data)) {
		t.Fatalf("Put returned %s/%d, want %s/%d", gd, gs, digest.FromBytes(data), len(data))
	}
}

// readTar returns the members of a (possibly compressed) tar file, in order, with contents.
func readTar(t *testing.T, r io.Reader) (names []string, content map[string][]byte) {
	t.Helper()
	content = map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, content
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		content[h.Name] = b
	}
}

func commitAndRead(t *testing.T, s *Store, path string) ([]string, map[string][]byte) {
	t.Helper()
	if err := s.Commit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readTar(t, f)
}

// TestBlobsAreWrittenSideBySide: while one blob is still streaming, another is written and
// stored completely; both end up in the archive, under their names, once.
func TestBlobsAreWrittenSideBySide(t *testing.T) {
	s, path := newStore(t, Options{})
	first, second := bytes.Repeat([]byte("a"), 3000), []byte("second")
	gr := newGatedReader(first)
	done := putInBackground(s, gr, digest.FromBytes(first))
	put(t, s, second, digest.FromBytes(second), int64(len(second)))
	if _, ok := s.Blob(digest.FromBytes(second)); !ok {
		t.Fatal("second blob not stored while the first was streaming")
	}
	close(gr.release)
	if err := <-done; err != nil {
		t.Fatalf("first blob: %v", err)
	}
	names, content := commitAndRead(t, s, path)
	want := []string{"blobs/", "blobs/sha256/", member(digest.FromBytes(first)), member(digest.FromBytes(second))}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("members %v, want %v", names, want)
	}
	if !bytes.Equal(content[want[2]], first) || !bytes.Equal(content[want[3]], second) {
		t.Fatal("contents differ")
	}
}

// TestFailedBlobLeavesNoMember: a blob that fails while another was placed behind it becomes
// a discarded member; one that fails at the end of the tar is cut off. Neither is recorded,
// and both can be written again.
func TestFailedBlobLeavesNoMember(t *testing.T) {
	s, path := newStore(t, Options{})
	bad, other, last := bytes.Repeat([]byte("b"), 2000), []byte("other"), []byte("last")
	wrong := bytes.Clone(bad)
	wrong[len(wrong)-1] ^= 1
	gr := newGatedReader(wrong)
	done := putInBackground(s, gr, digest.FromBytes(bad))
	put(t, s, other, digest.FromBytes(other), int64(len(other)))
	close(gr.release)
	if err := <-done; !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("want ErrDigestMismatch, got %v", err)
	}
	if _, ok := s.Blob(digest.FromBytes(bad)); ok {
		t.Fatal("failed blob recorded as stored")
	}
	_, _, err := s.Put(context.Background(), strings.NewReader("lasT"), digest.FromBytes(last), 4, false, member)
	if !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("want ErrDigestMismatch, got %v", err)
	}
	put(t, s, bad, digest.FromBytes(bad), int64(len(bad)))
	put(t, s, last, digest.FromBytes(last), int64(len(last)))
	names, content := commitAndRead(t, s, path)
	discarded, stored := 0, map[string]int{}
	for _, n := range names {
		if strings.HasPrefix(n, ".imgcopy-discarded-") {
			discarded++
		}
		stored[n]++
	}
	if discarded != 1 || stored[member(digest.FromBytes(bad))] != 1 || stored[member(digest.FromBytes(last))] != 1 {
		t.Fatalf("members %v: want one discarded region and each blob once", names)
	}
	if !bytes.Equal(content[member(digest.FromBytes(bad))], bad) {
		t.Fatal("rewritten blob differs")
	}
}

// TestUnknownBlobIsSpooled: a blob of unknown digest and size goes through a spool file,
// which is gone afterwards, and is stored under its computed digest.
func TestUnknownBlobIsSpooled(t *testing.T) {
	s, path := newStore(t, Options{})
	unknown := []byte("no digest given")
	d, n, err := s.Put(context.Background(), bytes.NewReader(unknown), "", -1, false, member)
	if err != nil || d != digest.FromBytes(unknown) || n != int64(len(unknown)) {
		t.Fatalf("Put without digest: %s %d %v", d, n, err)
	}
	names, content := commitAndRead(t, s, path)
	if !slices.Contains(names, member(d)) || !bytes.Equal(content[member(d)], unknown) {
		t.Fatalf("members %v", names)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if e.Name() != "out.tar" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestConcurrentSameBlob: while one call writes a blob, Wait and a second Put of it wait for
// that call. When it succeeds, Wait finds the blob; when it fails, the second Put writes the
// blob itself. Either way the blob is stored once.
func TestConcurrentSameBlob(t *testing.T) {
	for _, firstFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("first fails %v", firstFails), func(t *testing.T) {
			s, path := newStore(t, Options{})
			data := bytes.Repeat([]byte("s"), 4000)
			d := digest.FromBytes(data)
			first := bytes.Clone(data)
			if firstFails {
				first[len(first)-1] ^= 1
			}
			gr := newGatedReader(first)
			done := putInBackground(s, gr, d)
			waited := make(chan bool, 1)
			go func() {
				_, ok, err := s.Wait(context.Background(), d)
				waited <- ok && err == nil
			}()
			second := make(chan error, 1)
			go func() {
				_, _, err := s.Put(context.Background(), bytes.NewReader(data), d, int64(len(data)), false, member)
				second <- err
			}()
			close(gr.release)
			if err := <-done; (err != nil) != firstFails {
				t.Fatalf("first Put: %v", err)
			}
			if err := <-second; err != nil {
				t.Fatalf("second Put: %v", err)
			}
			if ok := <-waited; !firstFails && !ok {
				t.Errorf("Wait returned before the first Put stored the blob")
			}
			names, content := commitAndRead(t, s, path)
			count := 0
			for _, n := range names {
				if n == member(d) {
					count++
				}
			}
			if count != 1 || !bytes.Equal(content[member(d)], data) {
				t.Fatalf("blob stored %d times (members %v)", count, names)
			}
		})
	}
}

// TestCommitRefusesBlobsInFlight: Commit while a blob still streams fails and leaves nothing.
func TestCommitRefusesBlobsInFlight(t *testing.T) {
	s, path := newStore(t, Options{})
	data := bytes.Repeat([]byte("f"), 1000)
	gr := newGatedReader(data)
	done := putInBackground(s, gr, digest.FromBytes(data))
	err := s.Commit(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "still being written") {
		t.Fatalf("Commit: %v, want a refusal", err)
	}
	close(gr.release)
	<-done
	s.Abort()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("archive exists after a refused commit: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestCommitCompresses: the committed file is the tar compressed as asked, and nothing else
// is left in the directory.
func TestCommitCompresses(t *testing.T) {
	for _, tc := range []struct {
		compression string
		open        func(io.Reader) (io.Reader, error)
	}{
		{"gzip", func(r io.Reader) (io.Reader, error) { return pgzip.NewReader(r) }},
		{"zstd", func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) }},
	} {
		t.Run(tc.compression, func(t *testing.T) {
			t.Parallel()
			s, path := newStore(t, Options{Compression: tc.compression})
			data := []byte("compressed content")
			put(t, s, data, digest.FromBytes(data), int64(len(data)))
			if err := s.AddFile("index.json", []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := tc.open(f)
			if err != nil {
				t.Fatal(err)
			}
			_, content := readTar(t, zr)
			if !bytes.Equal(content[member(digest.FromBytes(data))], data) || string(content["index.json"]) != "{}" {
				t.Fatalf("members %v", content)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			for _, e := range entries {
				if staging.IsTemporary(e.Name()) {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}

// TestFinishFailureAbandons: a failing finish callback leaves no archive, and the Store
// refuses further writes.
func TestFinishFailureAbandons(t *testing.T) {
	s, path := newStore(t, Options{})
	boom := errors.New("boom")
	if err := s.Commit(context.Background(), func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Commit: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("archive exists: %v", err)
	}
	if err := s.AddFile("x", nil); err == nil {
		t.Fatal("write after a failed commit succeeded")
	}
}
