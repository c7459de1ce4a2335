package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Harness describes the transport under test. Only NewReference is required; new optional
// fields may be added, never new required ones, so a harness written today keeps compiling.
type Harness struct {
	// NewReference returns a reference for a fresh, empty image location (e.g. in t.TempDir()
	// for a transport that stores files, a new repository name for a registry). The suite
	// calls it once per subtest, from that subtest, and never writes two images to one
	// reference unless the test is about overwriting.
	NewReference func(t *testing.T) types.ImageReference
	// Sys is passed to NewImageSource, NewImageDestination and the optional interfaces; it
	// may be nil.
	Sys *types.SystemContext
	// RewritesManifest is set for destinations that store images in a format of their own and
	// synthesize the manifest when reading (docker-archive): the suite then compares the
	// config and layer digests of the manifest read back instead of its bytes.
	RewritesManifest bool
	// Snapshot, when set, describes everything the storage behind ref holds right now, in any
	// stable text form (DirSnapshot lists a directory tree). The suite compares the snapshot
	// taken after a failed PutBlob and Close with the one taken after an empty session (open,
	// Close) on the same reference: they must be equal, so a failure leaves no temporary
	// file, staging directory or half-written blob behind. Without it the suite can only
	// check what the transport itself reports.
	Snapshot func(t *testing.T, ref types.ImageReference) string
	// OtherName, when set, returns a reference to another name in the same store as ref
	// (another tag of the repository, another ref.name of the layout). The tests of names
	// use it: deleting one name (types.TagDeleter) must leave the image under the other.
	OtherName func(t *testing.T, ref types.ImageReference) types.ImageReference
}

// Run runs every conformance test as a subtest of t, each named after what it checks (so
// `go test -run 'TestConformance/WrongDigest'` runs one). Which tests run, and with which
// manifest types and layer compression, follows the destination's Properties(); the tests of
// an optional interface (types.ManifestChecker, types.ImageLister, …) run when the transport
// implements it and are skipped otherwise. A transport that passes Run follows the contract
// of docs/transports.md.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.NewReference == nil {
		t.Fatal("conformance.Harness.NewReference is nil")
	}
	s := &suite{h: h, props: probeProperties(t, h)}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"ReferenceRoundTrip", s.testReferenceRoundTrip},
		{"RoundTrip", s.testRoundTrip},
		{"Index", s.testIndex},
		{"UnknownSize", s.testUnknownSize},
		{"EmptyBlob", s.testEmptyBlob},
		{"MissingBlob", s.testMissingBlob},
		{"FailingStream", s.testFailingStream},
		{"WrongDigest", s.testWrongDigest},
		{"Verified", s.testVerified},
		{"CancelMidBlob", s.testCancelMidBlob},
		{"ConcurrentPutBlob", s.testConcurrentPutBlob},
		{"ConcurrentGetBlob", s.testConcurrentGetBlob},
		{"CloseWithoutCommit", s.testCloseWithoutCommit},
		{"ReuseAfterCommit", s.testReuseAfterCommit},
		{"ReuseRequiredCompression", s.testReuseRequiredCompression},
		{"Overwrite", s.testOverwrite},
		{"HasManifest", s.testHasManifest},
		{"ManifestDigest", s.testManifestDigest},
		{"ListImages", s.testListImages},
		{"ListTags", s.testListTags},
		{"DeleteImage", s.testDeleteImage},
		{"DeleteTag", s.testDeleteTag},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	h     Harness
	props types.DestinationProperties
}

func probeProperties(t *testing.T, h Harness) types.DestinationProperties {
	t.Helper()
	ref := h.NewReference(t)
	dest, err := ref.NewImageDestination(context.Background(), h.Sys)
	if err != nil {
		t.Fatalf("opening destination %s: %v", types.ImageName(ref), err)
	}
	props := dest.Properties()
	if err := dest.Close(); err != nil {
		t.Fatalf("closing unused destination %s: %v", types.ImageName(ref), err)
	}
	return props
}

func (s *suite) accepts(mimeType string) bool {
	return s.props.SupportedManifestMIMETypes == nil || slices.Contains(s.props.SupportedManifestMIMETypes, mimeType)
}

// manifestTypes returns the single-image manifest types the destination accepts.
func (s *suite) manifestTypes(t *testing.T) []string {
	var res []string
	for _, mt := range []string{imgspecv1.MediaTypeImageManifest, dockerSchema2MediaType} {
		if s.accepts(mt) {
			res = append(res, mt)
		}
	}
	if len(res) == 0 {
		t.Fatalf("destination accepts neither OCI nor Docker schema2 manifests: %v", s.props.SupportedManifestMIMETypes)
	}
	return res
}

func (s *suite) uncompressed() bool {
	return s.props.DesiredLayerCompression == types.Decompress
}

// image builds the default test image of the first accepted manifest type.
func (s *suite) image(t *testing.T, layers int) Image {
	t.Helper()
	img, err := BuildImage(ImageOptions{MIMEType: s.manifestTypes(t)[0], Uncompressed: s.uncompressed(), Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (s *suite) openDest(t *testing.T, ref types.ImageReference) types.ImageDestination {
	t.Helper()
	dest, err := ref.NewImageDestination(context.Background(), s.h.Sys)
	if err != nil {
		t.Fatalf("opening destination %s: %v", types.ImageName(ref), err)
	}
	if dest.Reference() == nil {
		t.Errorf("destination %s: Reference() is nil", types.ImageName(ref))
	}
	return dest
}

func closeDest(t *testing.T, dest types.ImageDestination) {
	t.Helper()
	if err := dest.Close(); err != nil {
		t.Errorf("closing destination: %v", err)
	}
}

// putBlob stores one blob the way the copy engine does: TryReusingBlob, then PutBlob. It
// returns errors rather than failing t so that it can run on any goroutine.
func putBlob(ctx context.Context, dest types.ImageDestination, b Blob, unknownSize bool, opts types.PutBlobOptions) error {
	info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
	reused, ok, err := dest.TryReusingBlob(ctx, info, types.ReuseOptions{})
	if err != nil {
		return errors.Wrapf(err, "TryReusingBlob %s", b.Digest)
	}
	if ok {
		if reused.Info.Digest != b.Digest {
			return errors.Errorf("TryReusingBlob %s reused %s without CanSubstitute", b.Digest, reused.Info.Digest)
		}
		return nil
	}
	if unknownSize {
		info.Size = -1
	}
	got, err := dest.PutBlob(ctx, bytes.NewReader(b.Data), info, opts)
	if err != nil {
		return errors.Wrapf(err, "PutBlob %s", b.Digest)
	}
	if got.Digest != b.Digest || got.Size != int64(len(b.Data)) {
		return errors.Errorf("PutBlob %s returned %s (%d bytes), want %d bytes", b.Digest, got.Digest, got.Size, len(b.Data))
	}
	return nil
}

// blobWrite says how putImageBlobs announces blobs: with size -1, or as a caller that
// verifies the stream (PutBlobOptions.Verified).
type blobWrite struct {
	unknownSize, verified bool
}

// putImageBlobs stores the config and layers of img.
func putImageBlobs(ctx context.Context, t *testing.T, dest types.ImageDestination, img Image, w blobWrite) {
	t.Helper()
	if err := putBlob(ctx, dest, img.Config, w.unknownSize, types.PutBlobOptions{IsConfig: true, LayerIndex: -1, Verified: w.verified}); err != nil {
		t.Fatal(err)
	}
	for i, l := range img.Layers {
		if err := putBlob(ctx, dest, l, w.unknownSize, types.PutBlobOptions{LayerIndex: i, Verified: w.verified}); err != nil {
			t.Fatal(err)
		}
	}
}

// commitImage writes img's manifest as the top-level one and commits.
func commitImage(ctx context.Context, t *testing.T, dest types.ImageDestination, img Image) {
	t.Helper()
	if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// writeImage writes img to ref following the call order and commits it.
func (s *suite) writeImage(t *testing.T, ref types.ImageReference, img Image, w blobWrite) {
	t.Helper()
	ctx := context.Background()
	dest := s.openDest(t, ref)
	defer closeDest(t, dest)
	putImageBlobs(ctx, t, dest, img, w)
	commitImage(ctx, t, dest, img)
}

func (s *suite) openSource(t *testing.T, ref types.ImageReference) types.ImageSource {
	t.Helper()
	src, err := ref.NewImageSource(context.Background(), s.h.Sys)
	if err != nil {
		t.Fatalf("opening source %s: %v", types.ImageName(ref), err)
	}
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("closing source: %v", err)
		}
	})
	return src
}

// checkManifest reads a manifest (instance may be nil) and compares it with want.
func (s *suite) checkManifest(t *testing.T, src types.ImageSource, instance *Image, want []byte, wantType string) {
	t.Helper()
	var inst *digest.Digest
	if instance != nil {
		d := instance.Digest
		inst = &d
	}
	got, gotType, err := src.GetManifest(context.Background(), inst)
	if err != nil {
		t.Fatalf("GetManifest: %v", err)
	}
	if s.h.RewritesManifest && instance == nil && wantType != imgspecv1.MediaTypeImageIndex && wantType != dockerListMediaType {
		checkSameBlobs(t, got, want)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("GetManifest returned different bytes:\n got %s\nwant %s", got, want)
	}
	if gotType != "" && gotType != wantType {
		t.Errorf("GetManifest MIME type %q, want %q", gotType, wantType)
	}
}

// checkSameBlobs compares the config and layer digests of two manifests.
func checkSameBlobs(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w imgspecv1.Manifest
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("parsing manifest read back: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if g.Config.Digest != w.Config.Digest {
		t.Errorf("manifest read back has config %s, want %s", g.Config.Digest, w.Config.Digest)
	}
	if len(g.Layers) != len(w.Layers) {
		t.Fatalf("manifest read back has %d layers, want %d", len(g.Layers), len(w.Layers))
	}
	for i := range g.Layers {
		if g.Layers[i].Digest != w.Layers[i].Digest {
			t.Errorf("layer %d read back is %s, want %s", i, g.Layers[i].Digest, w.Layers[i].Digest)
		}
	}
}

// checkBlobs reads every blob back and compares the bytes.
func checkBlobs(t *testing.T, src types.ImageSource, blobs []Blob) {
	t.Helper()
	for _, b := range blobs {
		if err := readBlob(context.Background(), src, b); err != nil {
			t.Error(err)
		}
	}
}

// checkImage reads img back from ref.
func (s *suite) checkImage(t *testing.T, ref types.ImageReference, img Image) {
	t.Helper()
	src := s.openSource(t, ref)
	s.checkManifest(t, src, nil, img.Manifest, img.MIMEType)
	checkBlobs(t, src, img.Blobs())
}

// assertNoImage checks that ref holds no readable image.
func (s *suite) assertNoImage(t *testing.T, ref types.ImageReference) {
	t.Helper()
	src, err := ref.NewImageSource(context.Background(), s.h.Sys)
	if err != nil {
		if !errors.Is(err, types.ErrManifestNotFound) && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("opening an absent image: want ErrManifestNotFound or fs.ErrNotExist, got %v", err)
		}
		return
	}
	defer src.Close()
	m, _, err := src.GetManifest(context.Background(), nil)
	switch {
	case err == nil:
		t.Errorf("an image is visible at %s although nothing was committed: %s", types.ImageName(ref), m)
	case !errors.Is(err, types.ErrManifestNotFound):
		t.Errorf("GetManifest of an absent image: want ErrManifestNotFound, got %v", err)
	}
}
