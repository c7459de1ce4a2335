package tarfile

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// gatedReader serves data; before its last byte it reports that it started and waits for
// release (bounded, so that a broken writer fails the test instead of hanging it).
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

// newTestArchive starts a docker-archive destination for a schema2 test image.
func newTestArchive(t *testing.T) (conformance.Image, string, *Writer, types.ImageDestination) {
	t.Helper()
	img := buildImage(t, conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType})
	path := filepath.Join(t.TempDir(), "out.tar")
	w, err := NewWriter(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dest := NewDestination(w, true, fakeRef{}, nil, nil)
	t.Cleanup(func() { dest.Close() })
	return img, path, w, dest
}

// putInBackground starts PutBlob of gr and returns once gr is being read; the result comes
// on the channel.
func putInBackground(dest types.ImageDestination, gr *gatedReader, info types.BlobInfo) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := dest.PutBlob(context.Background(), gr, info, types.PutBlobOptions{})
		done <- err
	}()
	<-gr.started
	return done
}

// commitAndCheck writes the rest of img, commits, and checks that every blob reads back.
func commitAndCheck(t *testing.T, dest types.ImageDestination, path string, img conformance.Image) []string {
	t.Helper()
	putBlobs(t, dest, img)
	if err := dest.PutManifest(context.Background(), img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	names, _, _ := tarMembers(t, path) // fails on a malformed tar
	src, err := openSource(t, path, nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, b := range img.Blobs() {
		if got := readBlob(t, src, types.BlobInfo{Digest: b.Digest}); !bytes.Equal(got, b.Data) {
			t.Fatalf("blob %s reads back wrong", b.Digest)
		}
	}
	return names
}

// TestBlobsAreWrittenSideBySide: while one blob is still streaming, another is written and
// stored completely; neither waits for the other, and both end up in the archive.
func TestBlobsAreWrittenSideBySide(t *testing.T) {
	img, path, w, dest := newTestArchive(t)
	first, second := img.Layers[0], img.Layers[1]
	gr := newGatedReader(first.Data)
	done := putInBackground(dest, gr, types.BlobInfo{Digest: first.Digest, Size: int64(len(first.Data))})
	if _, err := dest.PutBlob(context.Background(), bytes.NewReader(second.Data), types.BlobInfo{Digest: second.Digest, Size: int64(len(second.Data))}, types.PutBlobOptions{}); err != nil {
		t.Fatalf("second blob: %v", err)
	}
	if _, ok := w.HasBlob(second.Digest); !ok {
		t.Fatal("second blob not stored while the first was streaming")
	}
	close(gr.release)
	if err := <-done; err != nil {
		t.Fatalf("first blob: %v", err)
	}
	names := commitAndCheck(t, dest, path, img)
	for _, n := range names {
		if strings.HasPrefix(n, ".tmp") || strings.Contains(n, "discarded") {
			t.Errorf("unexpected member %s", n)
		}
	}
}

// TestFailedBlobBeforeOthersIsDiscarded: a blob that fails after another blob was placed
// behind it cannot be cut off; its region becomes a discarded member, the tar stays valid,
// and the blob can be written again.
func TestFailedBlobBeforeOthersIsDiscarded(t *testing.T) {
	img, path, w, dest := newTestArchive(t)
	bad, other := img.Layers[0], img.Layers[1]
	wrong := bytes.Clone(bad.Data)
	wrong[len(wrong)-1] ^= 1
	gr := newGatedReader(wrong)
	done := putInBackground(dest, gr, types.BlobInfo{Digest: bad.Digest, Size: int64(len(bad.Data))})
	if _, err := dest.PutBlob(context.Background(), bytes.NewReader(other.Data), types.BlobInfo{Digest: other.Digest, Size: int64(len(other.Data))}, types.PutBlobOptions{}); err != nil {
		t.Fatal(err)
	}
	close(gr.release)
	if err := <-done; !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("want ErrDigestMismatch, got %v", err)
	}
	if _, ok := w.HasBlob(bad.Digest); ok {
		t.Fatal("failed blob recorded as stored")
	}
	names := commitAndCheck(t, dest, path, img) // writes bad's layer again, correctly
	discarded, stored := 0, 0
	for _, n := range names {
		if strings.HasPrefix(n, ".imgcopy-discarded-") {
			discarded++
		}
		if n == blobPath(bad.Digest) {
			stored++
		}
	}
	if discarded != 1 || stored != 1 {
		t.Fatalf("members %v: want one discarded region and the layer stored once", names)
	}
}
