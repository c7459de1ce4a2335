package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/types"
)

// testImage is a small synthetic OCI image.
type testImage struct {
	config   []byte
	layers   [][]byte
	manifest []byte
	digest   digest.Digest
}

func (img testImage) blobs() [][]byte { return append([][]byte{img.config}, img.layers...) }

func newTestImage(t testing.TB, seed uint64, arch string) testImage {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 42))
	var img testImage
	img.config = []byte(fmt.Sprintf(`{"architecture":%q,"os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":%d}`, arch, seed))
	m := imgspecv1.Manifest{
		MediaType: imgspecv1.MediaTypeImageManifest,
		Config:    imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))},
	}
	m.SchemaVersion = 2
	for i := 0; i < 2; i++ {
		l := make([]byte, 1000+rng.IntN(3000))
		for j := range l {
			l[j] = byte(rng.Uint32())
		}
		img.layers = append(img.layers, l)
		m.Layers = append(m.Layers, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageLayerGzip, Digest: digest.FromBytes(l), Size: int64(len(l))})
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	img.manifest, img.digest = b, digest.FromBytes(b)
	return img
}

func indexOf(t testing.TB, imgs ...testImage) []byte {
	t.Helper()
	idx := imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for i, img := range imgs {
		idx.Manifests = append(idx.Manifests, imgspecv1.Descriptor{
			MediaType: imgspecv1.MediaTypeImageManifest, Digest: img.digest, Size: int64(len(img.manifest)),
			Platform: &imgspecv1.Platform{OS: "linux", Architecture: []string{"amd64", "arm64"}[i%2]},
		})
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // generous: -race on a loaded 2-core machine
	t.Cleanup(cancel)
	return withSleeper(ctx, func(ctx context.Context, d time.Duration) error { return ctx.Err() })
}

// recordingSleeper records requested delays without sleeping.
type recordingSleeper struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (r *recordingSleeper) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.delays = append(r.delays, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *recordingSleeper) get() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.delays...)
}

func mustParse(t testing.TB, s string) types.ImageReference {
	t.Helper()
	ref, err := Transport.ParseReference(s)
	if err != nil {
		t.Fatalf("parsing %q: %v", s, err)
	}
	return ref
}

// anonSys is a SystemContext that never reads the user's credential files.
func anonSys() *types.SystemContext { return &types.SystemContext{NoCreds: true} }

// pushImage writes img (single image, or the instances plus an index) through a destination.
func pushImage(t testing.TB, ctx context.Context, ref types.ImageReference, sys *types.SystemContext, cache types.BlobInfoCache, src types.ImageReference, images []testImage, index []byte) []types.ReusedBlob {
	t.Helper()
	dest, err := ref.NewImageDestination(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	var reused []types.ReusedBlob
	for _, img := range images {
		for _, b := range img.blobs() {
			info := types.BlobInfo{Digest: digest.FromBytes(b), Size: int64(len(b))}
			rb, ok, err := dest.TryReusingBlob(ctx, info, types.ReuseOptions{Cache: cache, SourceReference: src})
			if err != nil {
				t.Fatalf("TryReusingBlob: %v", err)
			}
			if ok {
				reused = append(reused, rb)
				continue
			}
			got, err := dest.PutBlob(ctx, bytes.NewReader(b), info, types.PutBlobOptions{Cache: cache})
			if err != nil {
				t.Fatalf("PutBlob: %v", err)
			}
			if got.Digest != info.Digest || got.Size != info.Size {
				t.Fatalf("PutBlob returned %+v, want %+v", got, info)
			}
		}
		var inst *digest.Digest
		if index != nil {
			d := img.digest
			inst = &d
		}
		if err := dest.PutManifest(ctx, img.manifest, imgspecv1.MediaTypeImageManifest, inst); err != nil {
			t.Fatalf("PutManifest: %v", err)
		}
	}
	if index != nil {
		if err := dest.PutManifest(ctx, index, imgspecv1.MediaTypeImageIndex, nil); err != nil {
			t.Fatalf("PutManifest(index): %v", err)
		}
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return reused
}

// pullImage reads every manifest and blob of ref and checks them against images.
func pullImage(t testing.TB, ctx context.Context, ref types.ImageReference, sys *types.SystemContext, images []testImage, index []byte) {
	t.Helper()
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	top, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, wantMT := images[0].manifest, imgspecv1.MediaTypeImageManifest
	if index != nil {
		want, wantMT = index, imgspecv1.MediaTypeImageIndex
	}
	if !bytes.Equal(top, want) || mt != wantMT {
		t.Fatalf("top manifest %s %q, want %s", mt, top, wantMT)
	}
	for _, img := range images {
		if index != nil {
			d := img.digest
			b, _, err := src.GetManifest(ctx, &d)
			if err != nil || !bytes.Equal(b, img.manifest) {
				t.Fatalf("instance %s: %v", d, err)
			}
		}
		for _, b := range img.blobs() {
			readBlob(t, ctx, src, b)
		}
	}
}

func readBlob(t testing.TB, ctx context.Context, src types.ImageSource, b []byte) {
	t.Helper()
	d := digest.FromBytes(b)
	rc, size, err := src.GetBlob(ctx, types.BlobInfo{Digest: d, Size: int64(len(b))}, types.GetBlobOptions{})
	if err != nil {
		t.Fatalf("GetBlob %s: %v", d, err)
	}
	defer rc.Close()
	if size != int64(len(b)) {
		t.Errorf("GetBlob size %d, want %d", size, len(b))
	}
	vr, err := verify.NewReader(rc, d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, vr); err != nil {
		t.Fatalf("reading blob %s: %v", d, err)
	}
}

// countRequests counts recorded requests matching method and a path substring (and query
// substring when non-empty).
func countRequests(recs []testregistry.RequestRecord, method, pathPart, queryPart string) int {
	n := 0
	for _, r := range recs {
		if r.Method == method && strings.Contains(r.Path, pathPart) && strings.Contains(r.RawQuery, queryPart) {
			n++
		}
	}
	return n
}

// memCache is a minimal BlobInfoCache for tests: it only remembers locations.
type memCache struct {
	mu   sync.Mutex
	locs map[string][]types.BICReplacementCandidate
}

var _ types.BlobInfoCache = (*memCache)(nil)

func newMemCache() *memCache { return &memCache{locs: map[string][]types.BICReplacementCandidate{}} }

func (c *memCache) UncompressedDigest(digest.Digest) digest.Digest       { return "" }
func (c *memCache) RecordDigestUncompressedPair(_, _ digest.Digest)      {}
func (c *memCache) RecordDigestCompressorName(_ digest.Digest, _ string) {}
func (c *memCache) key(tr string, s types.BICTransportScope, d digest.Digest) string {
	return tr + "|" + s.Opaque + "|" + d.String()
}

func (c *memCache) RecordKnownLocation(tr string, s types.BICTransportScope, d digest.Digest, loc types.BICLocationReference) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.key(tr, s, d)
	for _, e := range c.locs[k] {
		if e.Location == loc {
			return
		}
	}
	c.locs[k] = append([]types.BICReplacementCandidate{{Digest: d, Location: loc, LastSeen: time.Now()}}, c.locs[k]...)
}

func (c *memCache) CandidateLocations(tr string, s types.BICTransportScope, d digest.Digest, _ bool) []types.BICReplacementCandidate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]types.BICReplacementCandidate(nil), c.locs[c.key(tr, s, d)]...)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

// currentChallenge returns a copy of the challenge answered so far, or nil.
func (a *authenticator) currentChallenge() *challenge {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.challenge == nil {
		return nil
	}
	c := *a.challenge
	return &c
}
