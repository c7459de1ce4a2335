package conformance

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// testReferenceRoundTrip checks that a reference names its transport and survives a round
// trip through the transport's parser, as types.ImageReference promises.
func (s *suite) testReferenceRoundTrip(t *testing.T) {
	checkReferenceRoundTrip(t, s.h.NewReference(t))
}

// checkReferenceRoundTrip checks that ref names its transport and that parsing its
// StringWithinTransport gives it back.
func checkReferenceRoundTrip(t *testing.T, ref types.ImageReference) {
	t.Helper()
	tr := ref.Transport()
	if tr == nil {
		t.Fatalf("Transport() of %s is nil", ref.StringWithinTransport())
	}
	if name := tr.Name(); name == "" || strings.Contains(name, ":") {
		t.Errorf("transport name %q: want a non-empty name without a colon", name)
	}
	within := ref.StringWithinTransport()
	again, err := tr.ParseReference(within)
	if err != nil {
		t.Fatalf("ParseReference(%q), the reference's own StringWithinTransport: %v", within, err)
	}
	if types.ImageName(again) != types.ImageName(ref) {
		t.Errorf("ParseReference(%q) gives %s, want %s", within, types.ImageName(again), types.ImageName(ref))
	}
	a, b := ref.DockerReference(), again.DockerReference()
	if (a == nil) != (b == nil) || (a != nil && a.String() != b.String()) {
		t.Errorf("DockerReference changed in a parse round trip: %v, then %v", a, b)
	}
}

// testVerified writes an image with PutBlobOptions.Verified set, as the copy engine does,
// and checks that a verified stream that fails at EOF (the caller found a mismatch) still
// fails the PutBlob and leaves nothing behind: a destination must read to EOF before it
// makes a blob visible, even when it does not hash the stream itself.
func (s *suite) testVerified(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		img := s.image(t, 0)
		ref := s.h.NewReference(t)
		s.writeImage(t, ref, img, blobWrite{verified: true})
		s.checkImage(t, ref, img)
	})
	t.Run("MismatchAtEOF", func(t *testing.T) {
		layer := s.image(t, 0).Layers[0]
		n := int64(len(layer.Data))
		ref := s.h.NewReference(t)
		base, snap := s.emptySessionSnapshot(t, ref)
		dest := s.openDest(t, ref)
		mismatch := types.DigestMismatchError{Expected: layer.Digest.String(), Actual: "sha256:0", ExpectedSize: n, ActualSize: n}
		info := types.BlobInfo{Digest: layer.Digest, Size: n, MediaType: layer.MediaType}
		_, err := dest.PutBlob(context.Background(), &failingReader{data: layer.Data, err: mismatch}, info, types.PutBlobOptions{LayerIndex: 0, Verified: true})
		if err == nil {
			t.Errorf("PutBlob succeeded although its verified stream failed at EOF with %v", mismatch)
		}
		assertNotReusableIn(t, dest, layer.Digest)
		closeDest(t, dest)
		s.assertNoTrace(t, ref, base, snap, "a verified PutBlob whose stream failed at EOF")
		s.assertNotReusable(t, ref, layer.Digest)
	})
}

// testConcurrentGetBlob reads every blob of a six-layer image twice, all at once, when the
// source says GetBlob may be called concurrently.
func (s *suite) testConcurrentGetBlob(t *testing.T) {
	img := s.image(t, 6)
	ref := s.h.NewReference(t)
	s.writeImage(t, ref, img, blobWrite{})
	checkConcurrentGetBlob(t, s.openSource(t, ref), img.Blobs())
}

// readBlob reads b back from src and compares the bytes and the reported size. It returns
// errors rather than failing a test so that it can run on any goroutine.
func readBlob(ctx context.Context, src types.ImageSource, b Blob) error {
	rc, size, err := src.GetBlob(ctx, types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}, types.GetBlobOptions{})
	if err != nil {
		return errors.Wrapf(err, "GetBlob %s", b.Digest)
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); cerr != nil && err == nil {
		err = errors.Wrapf(cerr, "closing blob %s", b.Digest)
	}
	if err != nil {
		return errors.Wrapf(err, "reading blob %s", b.Digest)
	}
	if size != -1 && size != int64(len(b.Data)) {
		return errors.Errorf("GetBlob %s reported size %d, want %d or -1", b.Digest, size, len(b.Data))
	}
	if !bytes.Equal(got, b.Data) {
		return errors.Errorf("GetBlob %s returned %d different bytes, want %d", b.Digest, len(got), len(b.Data))
	}
	return nil
}
