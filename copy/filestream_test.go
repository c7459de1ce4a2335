package copy

import (
	"bytes"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// fileSource is a single-image source serving its blobs as files (like an OCI layout): a
// large layer, a small one and the config.
func fileSource(t *testing.T) (*fakeRef, testLayer, testLayer) {
	t.Helper()
	big, small := makeLayer(t, 1, 2*minFileBlob, ""), makeLayer(t, 2, 10<<10, "")
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, big, small)
	src.src.fileDir = t.TempDir()
	return src, big, small
}

// TestFileBlobTaken: a destination that sends files gets the file of a large blob copied
// unchanged, and the engine's verification of it; small blobs and the config are read as
// streams.
func TestFileBlobTaken(t *testing.T) {
	t.Parallel()
	src, big, small := fileSource(t)
	dest := newFakeRef("dest", newMemStore())
	dest.dest.takesFiles = true
	mustCopy(t, dest, src, nil)
	d := dest.lastDest()
	if len(d.tookFiles) != 1 || d.tookFiles[0] != big.digest() || d.fileErrs[0] != nil {
		t.Fatalf("files taken %v (verification %v), want only %s, verified", d.tookFiles, d.fileErrs, big.digest())
	}
	for _, l := range []testLayer{big, small} {
		if b, ok := dest.store.blob(l.digest()); !ok || !bytes.Equal(b, l.blob) {
			t.Errorf("layer %s not stored intact", l.digest())
		}
	}
}

// TestFileBlobReadAsStream: a destination that does not take files reads the same bytes
// through the stream (the chain reads the file without moving its offset).
func TestFileBlobReadAsStream(t *testing.T) {
	t.Parallel()
	src, big, _ := fileSource(t)
	dest := newFakeRef("dest", newMemStore())
	mustCopy(t, dest, src, nil)
	if d := dest.lastDest(); len(d.tookFiles) != 0 || !d.verified[big.digest()] {
		t.Fatalf("files taken %v, verified %v", d.tookFiles, d.verified)
	}
	if b, ok := dest.store.blob(big.digest()); !ok || !bytes.Equal(b, big.blob) {
		t.Errorf("layer not stored intact")
	}
}

// TestFileBlobTakenMismatch: a file that does not match its digest fails the copy with the
// mismatch (both digests named) from the verification the destination waits for, and the
// destination stores nothing of it. A file longer than the blob is not offered: it fails
// through the stream.
func TestFileBlobTakenMismatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		corrupt bool
		extra   []byte
		taken   bool
	}{{"altered", true, nil, true}, {"longer", false, []byte("x"), false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, big, _ := fileSource(t)
			if tc.corrupt {
				src.src.corrupt = map[digest.Digest]bool{big.digest(): true}
			}
			src.src.extra = map[digest.Digest][]byte{big.digest(): tc.extra}
			dest := newFakeRef("dest", newMemStore())
			dest.dest.takesFiles = true
			err := expectFailure(t, dest, src, nil)
			var mm types.DigestMismatchError
			if !errors.As(err, &mm) || mm.Expected != big.digest().String() || mm.Actual == "" || mm.Actual == mm.Expected {
				t.Fatalf("error %v, want the mismatch of %s", err, big.digest())
			}
			d := dest.lastDest()
			switch {
			case tc.taken && (len(d.fileErrs) != 1 || !errors.Is(d.fileErrs[0], types.ErrDigestMismatch)):
				t.Errorf("verification returned %v to the destination, want the mismatch", d.fileErrs)
			case !tc.taken && len(d.tookFiles) != 0:
				t.Errorf("files %v taken, want none", d.tookFiles)
			}
			if _, ok := d.staged[big.digest()]; ok {
				t.Errorf("corrupt layer staged")
			}
		})
	}
}

// endless never ends: reading it through stops only when told to.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return copy(p, "x"), nil }

// TestFileStreamFinishStopsSideReading: once a destination that took the file failed, the
// side reading stops at its next piece instead of reading the rest of the file, and the stop
// is not taken for a failure of the blob.
func TestFileStreamFinishStopsSideReading(t *testing.T) {
	t.Parallel()
	s := &fileStream{chain: &recordingReader{r: endless{}}, size: 1}
	if _, _, _, ok := s.TakeFile(); !ok {
		t.Fatal("file not taken")
	}
	s.finish(true) // would never return without the stop
	if err := s.chain.chainError(); err != nil {
		t.Errorf("chain error %v after the stop, want none", err)
	}
	if _, _, _, ok := s.TakeFile(); ok {
		t.Error("file taken twice")
	}
}

// TestFileBlobTakenDestinationFails: a destination that took the file and failed is
// reported as such (the file itself verified), without waiting forever.
func TestFileBlobTakenDestinationFails(t *testing.T) {
	t.Parallel()
	src, _, _ := fileSource(t)
	dest := newFakeRef("dest", newMemStore())
	dest.dest.takesFiles = true
	dest.dest.putBlobErr = errors.New("registry went away")
	err := expectFailure(t, dest, src, nil)
	if !errors.Is(err, dest.dest.putBlobErr) || errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("error %v, want the destination's", err)
	}
}
