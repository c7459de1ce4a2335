package tarfile

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// patternReader produces n deterministic bytes without holding them.
type patternReader struct {
	n, off int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rest := p.n - p.off; int64(len(b)) > rest {
		b = b[:rest]
	}
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x>>8) ^ byte(x*31)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// BenchmarkLargeLayerMemory writes and reads back an archive with one large layer (1 GiB,
// or IMGCOPY_BENCH_LAYER_BYTES) and fails when the heap allocated meanwhile is not small and
// independent of the layer size. Run with: go test -run '^$' -bench LargeLayer ./docker/tarfile/
func BenchmarkLargeLayerMemory(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("IMGCOPY_BENCH_LAYER_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	h := digest.Canonical.Digester()
	if _, err := io.Copy(h.Hash(), &patternReader{n: size}); err != nil {
		b.Fatal(err)
	}
	layer := h.Digest()
	config, _ := json.Marshal(imgspecv1.Image{Platform: imgspecv1.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer}}})
	m, _ := (&manifest.Schema2{
		Config: manifest.Schema2Descriptor{MediaType: manifest.DockerV2Schema2ConfigMediaType, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers: []manifest.Schema2Descriptor{{MediaType: manifest.DockerV2SchemaLayerMediaTypeUncompressed, Digest: layer, Size: size}},
	}).Serialize()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "big.tar")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		writeBig(b, path, config, m, layer, size)
		readBig(b, path, layer)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		b.ReportMetric(float64(alloc)/(1<<20), "MiB-allocated")
		if alloc > 64<<20 {
			b.Fatalf("writing and reading a %d-byte layer allocated %d bytes", size, alloc)
		}
		os.Remove(path)
	}
}

func writeBig(b *testing.B, path string, config, m []byte, layer digest.Digest, size int64) {
	ctx := context.Background()
	w, err := NewWriter(context.Background(), path, WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	dest := NewDestination(w, true, fakeRef{}, nil, nil)
	defer dest.Close()
	if _, err := dest.PutBlob(ctx, bytes.NewReader(config), types.BlobInfo{Digest: digest.FromBytes(config), Size: int64(len(config))}, types.PutBlobOptions{IsConfig: true}); err != nil {
		b.Fatal(err)
	}
	if _, err := dest.PutBlob(ctx, &patternReader{n: size}, types.BlobInfo{Digest: layer, Size: size}, types.PutBlobOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := dest.PutManifest(ctx, m, manifest.DockerV2Schema2MediaType, nil); err != nil {
		b.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		b.Fatal(err)
	}
}

func readBig(b *testing.B, path string, layer digest.Digest) {
	src, err := openSource(b, path, nil, "", -1)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, _, err := src.GetManifest(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	rc, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: layer}, types.GetBlobOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	h := digest.Canonical.Digester()
	if _, err := io.Copy(h.Hash(), rc); err != nil {
		b.Fatal(err)
	}
	if h.Digest() != layer {
		b.Fatalf("layer read back as %s", h.Digest())
	}
}
