package conformance

import (
	"context"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// SourceHarness describes a transport that only reads: images served from an embedded file
// system, a web server, a read-only mount. The suite cannot write through such a transport,
// so the test writes the images itself, in the transport's storage, when Serve asks.
type SourceHarness struct {
	// Serve stores img where the transport reads images (files under t.TempDir(), the
	// handler of an httptest server, an fstest.MapFS) and returns a reference to it. The
	// suite calls it once per subtest, from that subtest. Required.
	Serve func(t *testing.T, img Stored) types.ImageReference
	// Missing, when set, returns a reference to an image the transport does not have; the
	// test of the not-found errors of opening it runs only then.
	Missing func(t *testing.T) types.ImageReference
	// Sys is passed to NewImageSource, NewImageDestination and the optional interfaces; it
	// may be nil.
	Sys *types.SystemContext
}

// Stored is one image as Serve must store it: served byte for byte, the top-level manifest
// under the image's name, every other manifest and blob by its digest.
type Stored struct {
	// Manifest is the top-level manifest; its MediaType is the MIME type to serve it with.
	Manifest Blob
	// Instances are the manifests an index (Manifest) refers to; empty for a single image.
	Instances []Blob
	// Blobs are the configs and layers, each once; one of them may be empty (zero bytes).
	Blobs []Blob
}

// Stored returns img as Serve stores it.
func (img Image) Stored() Stored {
	return Stored{Manifest: Blob{Digest: img.Digest, MediaType: img.MIMEType, Data: img.Manifest}, Blobs: img.Blobs()}
}

// Stored returns idx as Serve stores it; blobs the instances share appear once.
func (idx Index) Stored() Stored {
	st := Stored{Manifest: Blob{Digest: idx.Digest, MediaType: idx.MIMEType, Data: idx.Manifest}}
	seen := map[digest.Digest]bool{}
	for _, inst := range idx.Instances {
		st.Instances = append(st.Instances, inst.Stored().Manifest)
		for _, b := range inst.Blobs() {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				st.Blobs = append(st.Blobs, b)
			}
		}
	}
	return st
}

// RunSource runs the conformance tests of a read-only transport as subtests of t: what Run
// checks of a source (manifests byte for byte, blobs, typed not-found errors, concurrent
// GetBlob, references that survive their parser, types.ManifestDigester), on images the
// harness stores, and that NewImageDestination refuses with a usage error (ClassUsage). A
// transport that can also write runs Run, which covers all of this.
func RunSource(t *testing.T, h SourceHarness) {
	t.Helper()
	if h.Serve == nil {
		t.Fatal("conformance.SourceHarness.Serve is nil")
	}
	s := &sourceSuite{h: h, suite: &suite{h: Harness{Sys: h.Sys}}}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"ReferenceRoundTrip", s.testReferenceRoundTrip},
		{"Image", s.testImage},
		{"Index", s.testIndex},
		{"EmptyBlob", s.testEmptyBlob},
		{"MissingBlob", s.testMissingBlob},
		{"MissingImage", s.testMissingImage},
		{"ConcurrentGetBlob", s.testConcurrentGetBlob},
		{"ManifestDigest", s.testManifestDigest},
		{"NoDestination", s.testNoDestination},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

// sourceSuite runs RunSource's tests; suite lends the read checks of Run.
type sourceSuite struct {
	h     SourceHarness
	suite *suite
}

// serve builds the default image of mimeType and has the harness store it.
func (s *sourceSuite) serve(t *testing.T, mimeType string, layers int) (Image, types.ImageReference) {
	t.Helper()
	img, err := BuildImage(ImageOptions{MIMEType: mimeType, Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	return img, s.h.Serve(t, img.Stored())
}

func (s *sourceSuite) testReferenceRoundTrip(t *testing.T) {
	_, ref := s.serve(t, imgspecv1.MediaTypeImageManifest, 0)
	checkReferenceRoundTrip(t, ref)
}

// testImage reads single images of both manifest types back.
func (s *sourceSuite) testImage(t *testing.T) {
	for _, mt := range []string{imgspecv1.MediaTypeImageManifest, dockerSchema2MediaType} {
		t.Run(mt, func(t *testing.T) {
			img, ref := s.serve(t, mt, 0)
			s.suite.checkImage(t, ref, img)
		})
	}
}

// testIndex reads indexes of both types back, with each instance and its blobs.
func (s *sourceSuite) testIndex(t *testing.T) {
	for _, mt := range []string{imgspecv1.MediaTypeImageIndex, dockerListMediaType} {
		t.Run(mt, func(t *testing.T) {
			idx, err := BuildIndex(mt, false)
			if err != nil {
				t.Fatal(err)
			}
			src := s.suite.openSource(t, s.h.Serve(t, idx.Stored()))
			s.suite.checkManifest(t, src, nil, idx.Manifest, idx.MIMEType)
			for _, inst := range idx.Instances {
				s.suite.checkManifest(t, src, &inst, inst.Manifest, inst.MIMEType)
				checkBlobs(t, src, inst.Blobs())
			}
		})
	}
}

// testEmptyBlob reads a zero-byte blob, which exists (an empty layer), back.
func (s *sourceSuite) testEmptyBlob(t *testing.T) {
	img, err := BuildImage(ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest})
	if err != nil {
		t.Fatal(err)
	}
	empty := newBlob(imgspecv1.MediaTypeImageLayer, []byte{})
	st := img.Stored()
	st.Blobs = append(st.Blobs, empty)
	checkBlobs(t, s.suite.openSource(t, s.h.Serve(t, st)), []Blob{empty})
}

func (s *sourceSuite) testMissingBlob(t *testing.T) {
	_, ref := s.serve(t, imgspecv1.MediaTypeImageManifest, 0)
	checkMissingInSource(t, s.suite.openSource(t, ref))
}

func (s *sourceSuite) testMissingImage(t *testing.T) {
	if s.h.Missing == nil {
		t.Skip("SourceHarness.Missing is not set")
	}
	s.suite.assertNoImage(t, s.h.Missing(t))
}

func (s *sourceSuite) testConcurrentGetBlob(t *testing.T) {
	img, ref := s.serve(t, imgspecv1.MediaTypeImageManifest, 6)
	checkConcurrentGetBlob(t, s.suite.openSource(t, ref), img.Blobs())
}

// testManifestDigest checks types.ManifestDigester against the stored manifest.
func (s *sourceSuite) testManifestDigest(t *testing.T) {
	img, ref := s.serve(t, imgspecv1.MediaTypeImageManifest, 0)
	md, ok := ref.(types.ManifestDigester)
	if !ok {
		t.Skip("reference does not implement types.ManifestDigester")
	}
	if d, err := md.ManifestDigest(context.Background(), s.h.Sys); err != nil || d != img.Digest {
		t.Errorf("ManifestDigest: %q, %v; want %s", d, err, img.Digest)
	}
}

// testNoDestination checks that opening a destination fails with a usage error, which the
// CLI reports with exit code 2 ("TRANSPORT: is read-only"), rather than an image half
// written or a panic.
func (s *sourceSuite) testNoDestination(t *testing.T) {
	_, ref := s.serve(t, imgspecv1.MediaTypeImageManifest, 0)
	dest, err := ref.NewImageDestination(context.Background(), s.h.Sys)
	if err == nil {
		dest.Close()
		t.Fatalf("NewImageDestination of read-only %s succeeded; a transport that can write runs conformance.Run", types.ImageName(ref))
	}
	if c := types.Classify(err); c != types.ClassUsage {
		t.Errorf("NewImageDestination of read-only %s: class %v, want %v (wrap types.ErrUsage): %v", types.ImageName(ref), c, types.ClassUsage, err)
	}
}

// checkMissingInSource checks the typed not-found errors of src for a blob and an instance
// it does not have.
func checkMissingInSource(t *testing.T, src types.ImageSource) {
	t.Helper()
	missing := digest.FromString("this blob is not in the image")
	rc, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: missing, Size: -1}, types.GetBlobOptions{})
	if err == nil {
		rc.Close()
		t.Fatalf("GetBlob of a missing blob succeeded")
	}
	if !errors.Is(err, types.ErrBlobNotFound) {
		t.Errorf("GetBlob of a missing blob: want ErrBlobNotFound, got %v", err)
	}
	if _, _, err := src.GetManifest(context.Background(), &missing); !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("GetManifest of a missing instance: want ErrManifestNotFound, got %v", err)
	}
}

// checkConcurrentGetBlob reads every blob twice, all at once, when src allows it.
func checkConcurrentGetBlob(t *testing.T, src types.ImageSource, blobs []Blob) {
	t.Helper()
	if !src.Properties().ConcurrentBlobs {
		t.Skip("source does not allow concurrent blob calls")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(blobs))
	for _, b := range blobs {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- readBlob(context.Background(), src, b)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
