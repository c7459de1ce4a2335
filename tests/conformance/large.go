package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/types"
)

// maxLargeBlobAlloc is the allocation budget for streaming one large blob through PutBlob and
// GetBlob: a few copy buffers and bookkeeping, independent of the blob's size.
const maxLargeBlobAlloc = 32 << 20

// generatedReader produces size pseudo-random bytes on the fly, without storing them.
type generatedReader struct {
	rng  *rand.ChaCha8
	left int64
}

func newGeneratedReader(seed uint64, size int64) *generatedReader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return &generatedReader{rng: rand.NewChaCha8(key), left: size}
}

func (g *generatedReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.rng.Read(p)
	g.left -= int64(n)
	return n, nil
}

// RunLargeBlob streams one generated blob of size bytes through PutBlob (with an unknown
// size), commits an image that uses it as a layer and reads it back with GetBlob, checking
// the digest. It fails when the bytes allocated during the round trip (runtime.MemStats
// TotalAlloc) exceed a fixed budget, i.e. when memory grows with the blob, and reports
// alloc-bytes and MB/s. Call it from a Benchmark; newRef returns a fresh location (e.g. in
// b.TempDir()) for each b.N iteration, sys may be nil.
func RunLargeBlob(b *testing.B, newRef func(testing.TB) types.ImageReference, sys *types.SystemContext, size int64) {
	h := Harness{Sys: sys}
	ctx := context.Background()
	b.SetBytes(size)
	var maxAlloc uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ref := newRef(b)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		d := putLargeImage(ctx, b, h, ref, size)
		readLargeBlob(ctx, b, h, ref, d, size)
		b.StopTimer()
		runtime.ReadMemStats(&after)
		maxAlloc = max(maxAlloc, after.TotalAlloc-before.TotalAlloc)
	}
	b.ReportMetric(float64(maxAlloc), "alloc-bytes/op")
	if maxAlloc > maxLargeBlobAlloc {
		b.Fatalf("streaming a %d-byte blob allocated %d bytes; memory must not grow with the blob", size, maxAlloc)
	}
}

func putLargeImage(ctx context.Context, b *testing.B, h Harness, ref types.ImageReference, size int64) digest.Digest {
	dest, err := ref.NewImageDestination(ctx, h.Sys)
	if err != nil {
		b.Fatal(err)
	}
	defer dest.Close()
	layer, err := dest.PutBlob(ctx, newGeneratedReader(uint64(size), size), types.BlobInfo{Size: -1}, types.PutBlobOptions{LayerIndex: 0})
	if err != nil {
		b.Fatalf("PutBlob of %d bytes: %v", size, err)
	}
	config, err := configJSON(imgspecv1.Platform{OS: "linux", Architecture: "amd64"}, []digest.Digest{layer.Digest})
	if err != nil {
		b.Fatal(err)
	}
	cfg := newBlob(imgspecv1.MediaTypeImageConfig, config)
	if err := putBlob(ctx, dest, cfg, false, types.PutBlobOptions{IsConfig: true, LayerIndex: -1}); err != nil {
		b.Fatal(err)
	}
	m, err := json.Marshal(imgspecv1.Manifest{
		Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: cfg.MediaType, Digest: cfg.Digest, Size: int64(len(cfg.Data))},
		Layers: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageLayer, Digest: layer.Digest, Size: layer.Size}},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := dest.PutManifest(ctx, m, imgspecv1.MediaTypeImageManifest, nil); err != nil {
		b.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		b.Fatal(err)
	}
	return layer.Digest
}

func readLargeBlob(ctx context.Context, b *testing.B, h Harness, ref types.ImageReference, d digest.Digest, size int64) {
	src, err := ref.NewImageSource(ctx, h.Sys)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: d, Size: size}, types.GetBlobOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	hash := sha256.New()
	n, err := io.Copy(hash, rc)
	if err != nil {
		b.Fatal(err)
	}
	if n != size || digest.NewDigest(digest.SHA256, hash) != d {
		b.Fatalf("GetBlob returned %d bytes with another digest than the %d bytes written", n, size)
	}
}
