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
