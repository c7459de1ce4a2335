package conformance

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// testRoundTrip writes one image per accepted manifest type and reads it back.
func (s *suite) testRoundTrip(t *testing.T) {
	for _, mt := range s.manifestTypes(t) {
		t.Run(mt, func(t *testing.T) {
			img, err := BuildImage(ImageOptions{MIMEType: mt, Uncompressed: s.uncompressed()})
			if err != nil {
				t.Fatal(err)
			}
			ref := s.h.NewReference(t)
			s.writeImage(t, ref, img, blobWrite{})
			s.checkImage(t, ref, img)
		})
	}
}

// testIndex writes a two-platform index with its instances and reads everything back.
func (s *suite) testIndex(t *testing.T) {
	if !s.props.AcceptsIndex {
		t.Skip("destination does not accept indexes")
	}
	ran := false
	for _, v := range []struct{ index, instance string }{
		{imgspecv1.MediaTypeImageIndex, imgspecv1.MediaTypeImageManifest},
		{dockerListMediaType, dockerSchema2MediaType},
	} {
		if !s.accepts(v.index) || !s.accepts(v.instance) {
			continue
		}
		ran = true
		t.Run(v.index, func(t *testing.T) {
			idx, err := BuildIndex(v.index, s.uncompressed())
			if err != nil {
				t.Fatal(err)
			}
			ref := s.h.NewReference(t)
			s.writeIndex(t, ref, idx)
			src := s.openSource(t, ref)
			s.checkManifest(t, src, nil, idx.Manifest, idx.MIMEType)
			for _, inst := range idx.Instances {
				s.checkManifest(t, src, &inst, inst.Manifest, inst.MIMEType)
				checkBlobs(t, src, inst.Blobs())
			}
		})
	}
	if !ran {
		t.Errorf("AcceptsIndex is true but SupportedManifestMIMETypes %v has no index type with its instance type", s.props.SupportedManifestMIMETypes)
	}
}

func (s *suite) writeIndex(t *testing.T, ref types.ImageReference, idx Index) {
	t.Helper()
	ctx := context.Background()
	dest := s.openDest(t, ref)
	defer closeDest(t, dest)
	for _, inst := range idx.Instances {
		putImageBlobs(ctx, t, dest, inst, blobWrite{})
		d := inst.Digest
		if err := dest.PutManifest(ctx, inst.Manifest, inst.MIMEType, &d); err != nil {
			t.Fatalf("PutManifest of instance %s: %v", d, err)
		}
	}
	if err := dest.PutManifest(ctx, idx.Manifest, idx.MIMEType, nil); err != nil {
		t.Fatalf("PutManifest of the index: %v", err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// testUnknownSize writes every blob with size -1, and the config also without a digest.
func (s *suite) testUnknownSize(t *testing.T) {
	ctx := context.Background()
	img := s.image(t, 0)
	ref := s.h.NewReference(t)
	dest := s.openDest(t, ref)
	defer closeDest(t, dest)
	got, err := dest.PutBlob(ctx, bytes.NewReader(img.Config.Data), types.BlobInfo{Size: -1, MediaType: img.Config.MediaType},
		types.PutBlobOptions{IsConfig: true, LayerIndex: -1})
	if err != nil {
		t.Fatalf("PutBlob without digest and size: %v", err)
	}
	if got.Digest != img.Config.Digest || got.Size != int64(len(img.Config.Data)) {
		t.Fatalf("PutBlob without digest and size returned %s (%d bytes), want %s (%d bytes)",
			got.Digest, got.Size, img.Config.Digest, len(img.Config.Data))
	}
	for i, l := range img.Layers {
		if err := putBlob(ctx, dest, l, true, types.PutBlobOptions{LayerIndex: i}); err != nil {
			t.Fatal(err)
		}
	}
	commitImage(ctx, t, dest, img)
	s.checkImage(t, ref, img)
}

// testEmptyBlob checks that a zero-length blob is a real blob, not an unknown size.
func (s *suite) testEmptyBlob(t *testing.T) {
	dest := s.openDest(t, s.h.NewReference(t))
	defer closeDest(t, dest)
	empty := digest.FromBytes(nil)
	got, err := dest.PutBlob(context.Background(), bytes.NewReader(nil), types.BlobInfo{Digest: empty, Size: 0}, types.PutBlobOptions{LayerIndex: -1})
	if err != nil {
		t.Fatalf("PutBlob of an empty blob: %v", err)
	}
	if got.Digest != empty || got.Size != 0 {
		t.Errorf("PutBlob of an empty blob returned %s (%d bytes)", got.Digest, got.Size)
	}
}

// testMissingBlob checks the typed not-found errors of a source and a false reuse answer.
func (s *suite) testMissingBlob(t *testing.T) {
	img := s.image(t, 0)
	ref := s.h.NewReference(t)
	s.writeImage(t, ref, img, blobWrite{})
	checkMissingInSource(t, s.openSource(t, ref))
	missing := digest.FromString("this blob is not in the image")
	s.assertNotReusable(t, ref, missing)
}

// assertNotReusable opens a destination at ref and checks that TryReusingBlob says no.
func (s *suite) assertNotReusable(t *testing.T, ref types.ImageReference, ds ...digest.Digest) {
	t.Helper()
	dest := s.openDest(t, ref)
	defer closeDest(t, dest)
	assertNotReusableIn(t, dest, ds...)
}

func assertNotReusableIn(t *testing.T, dest types.ImageDestination, ds ...digest.Digest) {
	t.Helper()
	for _, d := range ds {
		_, ok, err := dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: d, Size: -1}, types.ReuseOptions{})
		if err != nil {
			t.Errorf("TryReusingBlob %s: %v", d, err)
		}
		if ok {
			t.Errorf("TryReusingBlob %s: blob is reusable but should not exist", d)
		}
	}
}

var errBoom = errors.New("conformance: simulated source failure")

// failingReader returns data and then err instead of io.EOF.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// testFailingStream checks that a stream failing midway leaves nothing behind, and that the
// same blob can then be written successfully.
func (s *suite) testFailingStream(t *testing.T) {
	ctx := context.Background()
	img := s.image(t, 0)
	layer := img.Layers[0]
	ref := s.h.NewReference(t)
	base, snap := s.emptySessionSnapshot(t, ref)
	dest := s.openDest(t, ref)
	info := types.BlobInfo{Digest: layer.Digest, Size: int64(len(layer.Data)), MediaType: layer.MediaType}
	_, err := dest.PutBlob(ctx, &failingReader{data: layer.Data[:len(layer.Data)/2], err: errBoom}, info, types.PutBlobOptions{LayerIndex: 0})
	if err == nil {
		t.Fatalf("PutBlob from a failing stream succeeded")
	}
	t.Logf("PutBlob from a failing stream: %v", err)
	assertNotReusableIn(t, dest, layer.Digest)
	closeDest(t, dest)
	s.assertNoTrace(t, ref, base, snap, "a PutBlob from a failing stream")
	s.assertNoImage(t, ref)
	s.assertNotReusable(t, ref, layer.Digest)

	dest = s.openDest(t, ref)
	defer closeDest(t, dest)
	if err := putBlob(ctx, dest, layer, false, types.PutBlobOptions{LayerIndex: 0}); err != nil {
		t.Errorf("writing the blob again after a failed attempt: %v", err)
	}
}

// testWrongDigest checks that content not matching its digest or size is refused.
func (s *suite) testWrongDigest(t *testing.T) {
	img := s.image(t, 0)
	layer := img.Layers[0]
	n := int64(len(layer.Data))
	other := digest.FromString("some other content")
	for _, tc := range []struct {
		name string
		info types.BlobInfo
	}{
		{"digest", types.BlobInfo{Digest: other, Size: n}},
		{"digest, unknown size", types.BlobInfo{Digest: other, Size: -1}},
		{"size too small", types.BlobInfo{Digest: layer.Digest, Size: n - 1}},
		{"size too large", types.BlobInfo{Digest: layer.Digest, Size: n + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := s.h.NewReference(t)
			base, snap := s.emptySessionSnapshot(t, ref)
			dest := s.openDest(t, ref)
			tc.info.MediaType = layer.MediaType
			_, err := dest.PutBlob(context.Background(), bytes.NewReader(layer.Data), tc.info, types.PutBlobOptions{LayerIndex: 0})
			if !errors.Is(err, types.ErrDigestMismatch) {
				closeDest(t, dest)
				t.Fatalf("PutBlob with %s: want ErrDigestMismatch, got %v", tc.name, err)
			}
			assertNotReusableIn(t, dest, tc.info.Digest, layer.Digest)
			closeDest(t, dest)
			s.assertNoTrace(t, ref, base, snap, "a PutBlob with a wrong "+tc.name)
		})
	}
}

// cancellingReader cancels its context after the first chunk and keeps producing data, so
// only a destination that watches the context stops early.
type cancellingReader struct {
	data   []byte
	cancel context.CancelFunc
	reads  int
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.reads == 1 {
		r.cancel()
	}
	r.reads++
	n := copy(p[:min(len(p), 32<<10)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// testCancelMidBlob cancels the context while a blob streams.
func (s *suite) testCancelMidBlob(t *testing.T) {
	data := DeterministicBytes(42, 4<<20)
	d := digest.FromBytes(data)
	ref := s.h.NewReference(t)
	base, snap := s.emptySessionSnapshot(t, ref)
	dest := s.openDest(t, ref)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancellingReader{data: data, cancel: cancel}
	_, err := dest.PutBlob(ctx, r, types.BlobInfo{Digest: d, Size: int64(len(data))}, types.PutBlobOptions{LayerIndex: 0})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("PutBlob with a context cancelled midway: want context.Canceled, got %v", err)
	}
	assertNotReusableIn(t, dest, d)
	closeDest(t, dest)
	s.assertNoTrace(t, ref, base, snap, "a PutBlob cancelled midway")
	s.assertNoImage(t, ref)
	s.assertNotReusable(t, ref, d)
}

// testConcurrentPutBlob writes every blob of a six-layer image twice, all at once.
func (s *suite) testConcurrentPutBlob(t *testing.T) {
	if !s.props.ConcurrentBlobs {
		t.Skip("destination does not allow concurrent blob calls")
	}
	ctx := context.Background()
	img := s.image(t, 6)
	ref := s.h.NewReference(t)
	dest := s.openDest(t, ref)
	defer closeDest(t, dest)
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(img.Blobs()))
	for i, b := range img.Blobs() {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- putBlob(ctx, dest, b, false, types.PutBlobOptions{IsConfig: i == 0, LayerIndex: i - 1})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	commitImage(ctx, t, dest, img)
	s.checkImage(t, ref, img)
}

// testCloseWithoutCommit checks that an image is only visible after Commit.
func (s *suite) testCloseWithoutCommit(t *testing.T) {
	ctx := context.Background()
	img := s.image(t, 0)
	ref := s.h.NewReference(t)
	dest := s.openDest(t, ref)
	putImageBlobs(ctx, t, dest, img, blobWrite{})
	if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	closeDest(t, dest)
	s.assertNoImage(t, ref)
}

// testReuseAfterCommit checks that a committed image's blobs are reusable at the same
// location, and that an aborted second write leaves the image intact.
func (s *suite) testReuseAfterCommit(t *testing.T) {
	ctx := context.Background()
	img := s.image(t, 0)
	ref := s.h.NewReference(t)
	s.writeImage(t, ref, img, blobWrite{})
	dest := s.openDest(t, ref)
	for _, b := range img.Blobs() {
		reused, ok, err := dest.TryReusingBlob(ctx, types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}, types.ReuseOptions{})
		if err != nil || !ok {
			t.Errorf("TryReusingBlob %s after a commit: reused %v, error %v", b.Digest, ok, err)
			continue
		}
		if reused.Info.Digest != b.Digest || (reused.Info.Size != -1 && reused.Info.Size != int64(len(b.Data))) {
			t.Errorf("TryReusingBlob %s returned %s (%d bytes)", b.Digest, reused.Info.Digest, reused.Info.Size)
		}
	}
	closeDest(t, dest)
	s.checkImage(t, ref, img)
}

// testReuseRequiredCompression checks that TryReusingBlob honours a required compression: a
// stored layer is reused when its own compression is required, never when another one is.
func (s *suite) testReuseRequiredCompression(t *testing.T) {
	ctx := context.Background()
	img := s.image(t, 2)
	ref := s.h.NewReference(t)
	s.writeImage(t, ref, img, blobWrite{})
	dest := s.openDest(t, ref)
	defer closeDest(t, dest)
	for _, l := range img.Layers {
		own := types.UncompressedCompressorName
		if bytes.HasPrefix(l.Data, []byte{0x1f, 0x8b}) {
			own = types.GzipCompressorName
		}
		info := types.BlobInfo{Digest: l.Digest, Size: int64(len(l.Data)), MediaType: l.MediaType}
		for _, required := range []string{types.ZstdCompressorName, own} {
			opts := types.ReuseOptions{RequiredCompression: required, OriginalCompression: own, CanSubstitute: true}
			_, ok, err := dest.TryReusingBlob(ctx, info, opts)
			if err != nil || ok != (required == own) {
				t.Errorf("TryReusingBlob of %s layer %s with %s required: reused %v, error %v", own, l.Digest, required, ok, err)
			}
		}
	}
}

// testOverwrite writes two different images to the same location; the second one wins.
func (s *suite) testOverwrite(t *testing.T) {
	mt := s.manifestTypes(t)[0]
	first, err := BuildImage(ImageOptions{MIMEType: mt, Uncompressed: s.uncompressed(), Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	second, err := BuildImage(ImageOptions{MIMEType: mt, Architecture: "arm64", Uncompressed: s.uncompressed()})
	if err != nil {
		t.Fatal(err)
	}
	ref := s.h.NewReference(t)
	s.writeImage(t, ref, first, blobWrite{})
	s.writeImage(t, ref, second, blobWrite{})
	s.checkImage(t, ref, second)
}
