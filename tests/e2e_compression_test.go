package tests

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// TestE2EDestCompressionOverReuse copies a gzip image registry to registry with zstd
// requested while the gzip layers are already in the destination repository (and mountable
// from the source repository next door): every written layer must be zstd. A second copy to
// another repository with the same cache mounts the zstd variants instead of compressing again.
func TestE2EDestCompressionOverReuse(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{DockerMediaTypes: true})
	reg := testregistry.Start(t, testregistry.Options{})
	cache := memory.New()
	src := e2eRef(t, "docker://"+reg.Host+"/e2e/src:v1")
	e2eCopy(t, src, origin, &copier.Options{BlobInfoCache: cache})
	dest := e2eRef(t, "docker://"+reg.Host+"/e2e/zstd:v1")
	e2eCopy(t, dest, origin, &copier.Options{BlobInfoCache: cache}) // gzip layers present at dest

	res := e2eCopy(t, dest, src, &copier.Options{BlobInfoCache: cache, DestinationCompression: "zstd"})
	if res.MIMEType != imgspecv1.MediaTypeImageManifest || res.ManifestDigest == l.ManifestDigest {
		t.Fatalf("wrote %s %s, want a new OCI manifest", res.MIMEType, res.ManifestDigest)
	}
	rb := e2eVerify(t, dest, nil)
	e2eCheckZstdLayers(t, dest, rb)

	reg.ResetRequests()
	var mu sync.Mutex
	var compressed, mounted int
	other := e2eRef(t, "docker://"+reg.Host+"/e2e/other:v1")
	res2 := e2eCopy(t, other, src, &copier.Options{BlobInfoCache: cache, DestinationCompression: "zstd", Progress: func(ev copier.ProgressEvent) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case ev.Kind == copier.EventBlobDone && ev.MediaType == imgspecv1.MediaTypeImageLayerZstd:
			compressed++
		case ev.Kind == copier.EventBlobMounted && ev.MediaType == imgspecv1.MediaTypeImageLayerZstd:
			mounted++
		}
	}})
	if compressed != 0 || mounted != len(l.Images[0].Layers) || res2.ManifestDigest != res.ManifestDigest {
		t.Errorf("second zstd copy: %d layers compressed, %d mounted, digest %s; want the %d zstd variants mounted and digest %s",
			compressed, mounted, res2.ManifestDigest, len(l.Images[0].Layers), res.ManifestDigest)
	}
	e2eCheckZstdLayers(t, other, e2eVerify(t, other, nil))
}

// e2eCheckZstdLayers checks that every layer of an image read back is typed as zstd and
// that its stored bytes start as a zstd stream (e2eVerify decompressed each one already).
func e2eCheckZstdLayers(t *testing.T, ref types.ImageReference, rb e2eReadBack) {
	t.Helper()
	src, err := ref.NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, img := range rb.Images {
		for _, layer := range img.Manifest.LayerInfos() {
			rc, _, err := src.GetBlob(context.Background(), layer.BlobInfo, types.GetBlobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, len(zstdMagic))
			_, err = io.ReadFull(rc, head)
			rc.Close()
			if err != nil || layer.MediaType != imgspecv1.MediaTypeImageLayerZstd || !bytes.HasPrefix(head, zstdMagic) {
				t.Errorf("%s: layer %s is %s and starts % x (%v), want zstd", types.ImageName(ref), layer.Digest, layer.MediaType, head, err)
			}
		}
	}
}

// TestE2EDestCompressionLayoutVariants: a second copy with --dest-compress-format into an OCI
// layout that already holds the converted layers (written by the first) reuses them through
// the blob-info cache instead of compressing every layer again, and writes the same manifest;
// without the cache's knowledge (a fresh cache) it compresses them again.
func TestE2EDestCompressionLayoutVariants(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{DockerMediaTypes: true})
	cache := memory.New()
	layout := t.TempDir()
	opts := func(cache types.BlobInfoCache, compressed *int) *copier.Options {
		var mu sync.Mutex
		return &copier.Options{BlobInfoCache: cache, DestinationCompression: "zstd", Progress: func(ev copier.ProgressEvent) {
			mu.Lock()
			defer mu.Unlock()
			if ev.Kind == copier.EventBlobDone && ev.MediaType == imgspecv1.MediaTypeImageLayerZstd {
				*compressed++
			}
		}}
	}
	var first, second, fresh int
	res := e2eCopy(t, e2eRef(t, "oci:"+layout+":v1"), origin, opts(cache, &first))
	res2 := e2eCopy(t, e2eRef(t, "oci:"+layout+":v2"), origin, opts(cache, &second))
	res3 := e2eCopy(t, e2eRef(t, "oci:"+layout+":v3"), origin, opts(memory.New(), &fresh))
	layers := len(l.Images[0].Layers)
	if first != layers || second != 0 || fresh != layers {
		t.Errorf("layers compressed: %d, then %d with the cache, %d with a fresh one; want %d, 0, %d", first, second, fresh, layers, layers)
	}
	if res2.ManifestDigest != res.ManifestDigest || res3.ManifestDigest != res.ManifestDigest {
		t.Errorf("manifests %s, %s, %s; want the same", res.ManifestDigest, res2.ManifestDigest, res3.ManifestDigest)
	}
	v2 := e2eRef(t, "oci:"+layout+":v2")
	e2eCheckZstdLayers(t, v2, e2eVerify(t, v2, nil))
}
