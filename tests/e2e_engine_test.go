package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// Engine tests through the real local transports (dir:, oci:); copy/ itself tests the engine
// with in-memory fakes, since its tests may not import transports.

// TestE2ERecopyTransfersNothing copies a multi-platform image into a directory and an OCI
// layout, then again into the same directory and into another tag of the same layout: the
// second copies read no blob and keep the digest.
func TestE2ERecopyTransfersNothing(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{Platforms: e2ePlatforms()})
	base := t.TempDir()
	layoutPath := filepath.Join(base, "layout")
	cases := []struct {
		name        string
		first, then string
	}{
		{"dir", "dir:" + filepath.Join(base, "dir"), "dir:" + filepath.Join(base, "dir")},
		{"oci", "oci:" + layoutPath + ":one", "oci:" + layoutPath + ":two"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := e2eCopy(t, e2eRef(t, tc.first), origin, nil)
			// Blobs shared by the two platforms are transferred once.
			if first.BlobsCopied != len(e2eUniqueBlobs(l)) || first.BytesCopied == 0 || first.ManifestDigest != l.ManifestDigest {
				t.Fatalf("first copy: %d blobs copied, want the %d distinct ones: %s", first.BlobsCopied, len(e2eUniqueBlobs(l)), e2eJSON(first))
			}
			again := e2eCopy(t, e2eRef(t, tc.then), origin, nil)
			// BlobsReused is not checked: a destination that already has the manifest may be
			// skipped as a whole without looking at its blobs.
			if again.BytesCopied != 0 || again.BlobsCopied != 0 || again.ManifestDigest != l.ManifestDigest {
				t.Errorf("second copy: %d blobs / %d bytes copied, digest %s", again.BlobsCopied, again.BytesCopied, again.ManifestDigest)
			}
			e2eCheckMatrixCopy(t, l, tc.name, again, e2eVerify(t, e2eRef(t, tc.then), nil))
		})
	}
}

// TestE2ERecompress recompresses the gzip layers of an image to zstd, then back to gzip, then
// decompresses them: each step keeps the config and every diff_id, and changes the layer
// media types and digests as asked.
func TestE2ERecompress(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{})
	want := l.Images[0]
	base := t.TempDir()
	steps := []struct {
		name string
		opts copier.Options
		dest string
		comp string
	}{
		{"zstd", copier.Options{DestinationCompression: "zstd"}, "oci:" + filepath.Join(base, "zstd") + ":v1", "zstd"},
		{"gzip", copier.Options{DestinationCompression: "gzip"}, "dir:" + filepath.Join(base, "gzip"), "gzip"},
		{"decompress", copier.Options{DestinationDecompress: true}, "oci:" + filepath.Join(base, "plain") + ":v1", ""},
	}
	prev := origin
	for _, s := range steps {
		dest := e2eRef(t, s.dest)
		res := e2eCopy(t, dest, prev, &s.opts)
		rb := e2eVerify(t, dest, nil) // checks every layer against its diff_id
		img := rb.Images[0]
		if !res.DigestChanged || res.ManifestDigest != rb.TopDigest || img.Manifest.ConfigInfo().Digest != want.ConfigDigest {
			t.Errorf("%s: wrote %s (result %s, changed %v), config %s", s.name, rb.TopDigest, res.ManifestDigest, res.DigestChanged, img.Manifest.ConfigInfo().Digest)
		}
		for _, li := range img.Manifest.LayerInfos() {
			if got := manifest.LayerCompression(li.MediaType); got != s.comp {
				t.Errorf("%s: layer %s has media type %s (%q), want %q", s.name, li.Digest, li.MediaType, got, s.comp)
			}
		}
		if s.comp == "" && !slices.Equal(e2eLayerDigests(img.Manifest), want.DiffIDs) {
			t.Errorf("%s: layers %v, want the diff IDs %v", s.name, e2eLayerDigests(img.Manifest), want.DiffIDs)
		}
		prev = dest
	}
}

// TestE2EFailedCopyCommitsNothing makes a copy fail in the middle of a layer — a corrupted
// blob in a dir: source, or a cancelled context while the layer streams — and checks the
// error and that the destination (every transport) holds no image afterwards.
func TestE2EFailedCopyCommitsNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		break_ func(t *testing.T, srcPath string, layer digest.Digest) (types.ImageReference, context.Context)
		want   error
	}{
		{"corrupted blob", func(t *testing.T, srcPath string, layer digest.Digest) (types.ImageReference, context.Context) {
			p := filepath.Join(srcPath, layer.Encoded())
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff // same size, other digest
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return e2eRef(t, "dir:"+srcPath), context.Background()
		}, types.ErrDigestMismatch},
		{"cancelled mid-layer", func(t *testing.T, srcPath string, layer digest.Digest) (types.ImageReference, context.Context) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			return &e2eStallingRef{ImageReference: e2eRef(t, "dir:"+srcPath), stall: layer, onStall: cancel}, ctx
		}, context.Canceled},
	}
	reg := testregistry.Start(t, testregistry.Options{})
	for _, tc := range cases {
		for _, destKind := range e2eKinds {
			t.Run(tc.name+"/"+destKind, func(t *testing.T) {
				t.Parallel()
				l, origin := e2eFixture(t, fixtures.Options{})
				srcPath := filepath.Join(t.TempDir(), "src")
				e2eCopy(t, e2eRef(t, "dir:"+srcPath), origin, nil)
				src, ctx := tc.break_(t, srcPath, l.Images[0].Layers[len(l.Images[0].Layers)-1].Digest)
				dest := e2eLocation(t, destKind, t.TempDir(), reg.Host, strings.ReplaceAll(tc.name, " ", "-"))
				_, err := copier.Image(ctx, dest, src, &copier.Options{DestinationCompression: "zstd"})
				if !errors.Is(err, tc.want) {
					t.Fatalf("copy: %v, want %v", err, tc.want)
				}
				e2eCheckNoImage(t, dest)
			})
		}
	}
}

// e2eCheckNoImage checks that ref holds no readable image.
func e2eCheckNoImage(t *testing.T, ref types.ImageReference) {
	t.Helper()
	ctx := context.Background()
	src, err := ref.NewImageSource(ctx, nil)
	if err == nil {
		_, _, err = src.GetManifest(ctx, nil)
		src.Close()
	}
	switch {
	case err == nil:
		t.Errorf("%s holds an image after a failed copy", types.ImageName(ref))
	case !errors.Is(err, types.ErrManifestNotFound) && !errors.Is(err, fs.ErrNotExist):
		t.Errorf("%s after a failed copy: %v, want ErrManifestNotFound or a missing file", types.ImageName(ref), err)
	}
}

// e2eStallingRef wraps a source reference: reading blob stall calls onStall (which cancels the
// copy) after the first bytes and then blocks until the copy's context is done, like a
// network read interrupted mid-layer.
type e2eStallingRef struct {
	types.ImageReference
	stall   digest.Digest
	onStall func()
}

var _ types.ImageReference = (*e2eStallingRef)(nil)

func (r *e2eStallingRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	src, err := r.ImageReference.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return &e2eStallingSource{ImageSource: src, ref: r}, nil
}

type e2eStallingSource struct {
	types.ImageSource
	ref *e2eStallingRef
}

var _ types.ImageSource = (*e2eStallingSource)(nil)

func (s *e2eStallingSource) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	rc, size, err := s.ImageSource.GetBlob(ctx, info, opts)
	if err != nil || info.Digest != s.ref.stall {
		return rc, size, err
	}
	return &e2eStallingReader{rc: rc, ctx: ctx, onStall: s.ref.onStall}, size, nil
}

type e2eStallingReader struct {
	rc      io.ReadCloser
	ctx     context.Context
	onStall func()
	read    int64
}

func (r *e2eStallingReader) Read(p []byte) (int, error) {
	if r.read == 0 {
		n, err := r.rc.Read(p[:min(len(p), 1024)])
		r.read += int64(n)
		return n, err
	}
	r.onStall()
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func (r *e2eStallingReader) Close() error { return r.rc.Close() }

// TestE2EConvertIntoLayout converts a schema2 image into an OCI layout that already holds
// an OCI index under another tag: the index stays readable and the converted image keeps its
// config and layer digests.
func TestE2EConvertIntoLayout(t *testing.T) {
	t.Parallel()
	multi, multiRef := e2eFixture(t, fixtures.Options{Platforms: e2ePlatforms()})
	s2, s2Ref := e2eFixture(t, fixtures.Options{DockerMediaTypes: true})
	layoutPath := filepath.Join(t.TempDir(), "layout")
	e2eCopy(t, e2eRef(t, "oci:"+layoutPath+":multi"), multiRef, nil)
	conv := e2eRef(t, "oci:"+layoutPath+":converted")
	res := e2eCopy(t, conv, s2Ref, &copier.Options{ForceManifestMIMEType: imgspecv1.MediaTypeImageManifest})
	e2eCheckConverted(t, "schema2 into the layout", s2.Images[0], res, e2eVerify(t, conv, nil), imgspecv1.MediaTypeImageManifest)
	e2eCheckMatrixCopy(t, multi, "oci", &copier.Result{ManifestDigest: multi.ManifestDigest, Instances: make([]copier.InstanceResult, 2)},
		e2eVerify(t, e2eRef(t, "oci:"+layoutPath+":multi"), nil))
}

// e2eUniqueBlobs returns the distinct configs and layers of a fixture's images.
func e2eUniqueBlobs(l *fixtures.Layout) map[digest.Digest]bool {
	seen := map[digest.Digest]bool{}
	for _, img := range l.Images {
		seen[img.ConfigDigest] = true
		for _, b := range img.Layers {
			seen[b.Digest] = true
		}
	}
	return seen
}

// e2eWriteIndex stores a conformance index (whose platforms share their layers) at ref through
// the destination API: blobs, instance manifests, the index, commit.
func e2eWriteIndex(t *testing.T, ref types.ImageReference, idx conformance.Index) {
	t.Helper()
	ctx := context.Background()
	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	for _, img := range idx.Instances {
		for i, b := range img.Blobs() {
			info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
			if _, err := dest.PutBlob(ctx, bytes.NewReader(b.Data), info, types.PutBlobOptions{IsConfig: i == 0, LayerIndex: i - 1}); err != nil {
				t.Fatal(err)
			}
		}
		d := img.Digest
		if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, &d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(ctx, idx.Manifest, idx.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestE2ESharedLayersCopiedOnce copies an index whose two platforms share their layers, with
// one and with many parallel copies: each distinct blob is transferred exactly once, and the
// shared layers are stored once and readable for both instances.
func TestE2ESharedLayersCopiedOnce(t *testing.T) {
	t.Parallel()
	idx, err := conformance.BuildIndex(imgspecv1.MediaTypeImageIndex, false)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[digest.Digest]int64{}
	for _, img := range idx.Instances {
		for _, b := range img.Blobs() {
			distinct[b.Digest] = int64(len(b.Data))
		}
	}
	var distinctBytes int64
	for _, n := range distinct {
		distinctBytes += n
	}
	if len(distinct) >= 2*len(idx.Instances[0].Blobs()) {
		t.Fatalf("test index shares no blob between its instances")
	}
	srcPath := filepath.Join(t.TempDir(), "src")
	src := e2eRef(t, "oci:"+srcPath+":v1")
	e2eWriteIndex(t, src, idx)
	for _, parallel := range []int{1, 6} {
		t.Run(fmt.Sprintf("parallel-%d", parallel), func(t *testing.T) {
			t.Parallel()
			dest := e2eRef(t, "dir:"+filepath.Join(t.TempDir(), "d"))
			var mu sync.Mutex
			started := map[digest.Digest]int{}
			res := e2eCopy(t, dest, src, &copier.Options{ImageParallelCopies: parallel, Progress: func(ev copier.ProgressEvent) {
				if ev.Kind == copier.EventBlobStarted {
					mu.Lock()
					started[ev.Digest]++
					mu.Unlock()
				}
			}})
			mu.Lock()
			defer mu.Unlock()
			for d, n := range started {
				if n != 1 {
					t.Errorf("blob %s transferred %d times", d, n)
				}
			}
			if res.BlobsCopied != len(distinct) || res.BytesCopied != distinctBytes || len(started) != len(distinct) || res.ManifestDigest != idx.Digest {
				t.Errorf("copied %d blobs / %d bytes (%d started), want %d / %d; digest %s, want %s",
					res.BlobsCopied, res.BytesCopied, len(started), len(distinct), distinctBytes, res.ManifestDigest, idx.Digest)
			}
			if rb := e2eVerify(t, dest, nil); len(rb.Images) != 2 || rb.TopDigest != idx.Digest {
				t.Errorf("read back %s with %d images", rb.TopDigest, len(rb.Images))
			}
		})
	}
}

// TestE2EPlatformSelection copies a two-platform index from a registry with a platform subset
// (the written index lists only that instance, unchanged, and its own digest changes) and
// with MultiArchSystem (the running platform's image alone, byte-exact).
func TestE2EPlatformSelection(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{Platforms: e2ePlatforms()})
	reg := testregistry.Start(t, testregistry.Options{})
	src := e2eRef(t, "docker://"+reg.Host+"/e2e/multi:v1")
	e2eCopy(t, src, origin, nil)
	other := l.Images[1]
	system := e2eFixtureImage(t, l, e2ePlatformString(manifest.SystemPlatform(nil)))
	base := t.TempDir()

	subset := e2eRef(t, "oci:"+filepath.Join(base, "subset")+":v1")
	res := e2eCopy(t, subset, src, &copier.Options{Platforms: []types.Platform{other.Platform}})
	rb := e2eVerify(t, subset, nil)
	if !manifest.IsIndexType(rb.TopMIME) || len(rb.Images) != 1 || !res.DigestChanged || rb.TopDigest == l.ManifestDigest || res.ManifestDigest != rb.TopDigest {
		t.Errorf("subset copy wrote %s %s with %d images (result %s, changed %v); want an index of one image", rb.TopMIME, rb.TopDigest, len(rb.Images), res.ManifestDigest, res.DigestChanged)
	} else {
		e2eCheckSameImage(t, other, rb.Images[0])
	}

	sys := e2eRef(t, "dir:"+filepath.Join(base, "system"))
	res = e2eCopy(t, sys, src, &copier.Options{MultiArch: copier.MultiArchSystem})
	rb = e2eVerify(t, sys, nil)
	if manifest.IsIndexType(rb.TopMIME) || rb.TopDigest != system.ManifestDigest || res.ManifestDigest != system.ManifestDigest || len(res.Instances) != 1 {
		t.Errorf("system copy wrote %s %s (result %s, %d instances), want the %s image %s", rb.TopMIME, rb.TopDigest, res.ManifestDigest, len(res.Instances), e2ePlatformString(system.Platform), system.ManifestDigest)
	} else {
		e2eCheckSameImage(t, system, rb.Images[0])
	}
}
