package copy

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// srcLayer is a layer of a handcrafted OCI source manifest.
type srcLayer struct {
	layer       testLayer
	mediaType   string
	annotations map[string]string
}

// newOCISource stores an OCI image whose layer descriptors are given as they are (media types,
// annotations) and returns it as the top-level manifest.
func newOCISource(t *testing.T, layers ...srcLayer) (*fakeRef, []byte) {
	t.Helper()
	s := newMemStore()
	var tls []testLayer
	for _, l := range layers {
		tls = append(tls, l.layer)
	}
	config := makeConfig(t, "amd64", tls)
	s.putBlob(config)
	var ls []map[string]any
	for _, l := range layers {
		s.putBlob(l.layer.blob)
		d := map[string]any{"mediaType": l.mediaType, "size": len(l.layer.blob), "digest": l.layer.digest()}
		if l.annotations != nil {
			d["annotations"] = l.annotations
		}
		ls = append(ls, d)
	}
	m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": imgspecv1.MediaTypeImageManifest,
		"config": map[string]any{"mediaType": imgspecv1.MediaTypeImageConfig, "size": len(config), "digest": digest.FromBytes(config)},
		"layers": ls})
	s.setTop(m, imgspecv1.MediaTypeImageManifest)
	return newFakeRef("src", s), m
}

// TestCopyRecompressDropsBlobBoundAnnotations: zstd:chunked and eStargz annotations describe
// one compressed blob (table-of-contents offsets and digests); a recompressed layer must not
// carry them, while other annotations, and layers kept as they are, keep theirs.
func TestCopyRecompressDropsBlobBoundAnnotations(t *testing.T) {
	t.Parallel()
	chunked := map[string]string{
		"io.github.containers.zstd-chunked.manifest-checksum": "sha256:" + strings.Repeat("a", 64),
		"io.github.containers.zstd-chunked.manifest-position": "10:20:30:1",
		"org.example.kept": "yes",
	}
	stargz := map[string]string{
		"containerd.io/snapshot/stargz/toc.digest": "sha256:" + strings.Repeat("b", 64),
		"io.containers.estargz.uncompressed-size":  "1234",
	}
	onlyBound := map[string]string{ // the older prefix, as skopeo 1.9 writes it
		"io.containers.zstd-chunked.manifest-checksum": "sha256:" + strings.Repeat("c", 64),
		"io.containers.zstd-chunked.manifest-position": "402606:297:868:1",
	}
	src, _ := newOCISource(t,
		srcLayer{makeLayer(t, 1, 30<<10, "zstd"), imgspecv1.MediaTypeImageLayerZstd, chunked},
		srcLayer{makeLayer(t, 2, 20<<10, "gzip"), imgspecv1.MediaTypeImageLayerGzip, stargz},
		srcLayer{makeLayer(t, 3, 10<<10, "zstd"), imgspecv1.MediaTypeImageLayerZstd, onlyBound},
	)
	dest := newFakeRef("dest", newMemStore())
	res := mustCopy(t, dest, src, &Options{DestinationCompression: "gzip"})
	var m struct {
		Layers []imgspecv1.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(res.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{"org.example.kept": "yes"}, stargz, nil}
	for i, l := range m.Layers {
		if l.MediaType != imgspecv1.MediaTypeImageLayerGzip || !maps.Equal(l.Annotations, want[i]) {
			t.Errorf("layer %d: %s annotations %v, want %v", i, l.MediaType, l.Annotations, want[i])
		}
	}
	if strings.Contains(string(res.Manifest), `"annotations":{}`) {
		t.Errorf("empty annotations written: %s", res.Manifest)
	}
}

// TestCopyKeptLayerKeepsBlobBoundAnnotations: a layer written unchanged keeps its annotations,
// and the manifest stays byte-exact.
func TestCopyKeptLayerKeepsBlobBoundAnnotations(t *testing.T) {
	t.Parallel()
	chunked := map[string]string{"io.github.containers.zstd-chunked.manifest-checksum": "sha256:" + strings.Repeat("a", 64)}
	src, srcManifest := newOCISource(t, srcLayer{makeLayer(t, 1, 30<<10, "zstd"), imgspecv1.MediaTypeImageLayerZstd, chunked})
	dest := newFakeRef("dest", newMemStore())
	res := mustCopy(t, dest, src, &Options{DestinationCompression: "zstd"})
	if res.DigestChanged || string(res.Manifest) != string(srcManifest) {
		t.Errorf("manifest changed: %s", res.Manifest)
	}
}

// TestCopyEncryptedLayerRefusesCompressionChange: an encrypted layer's compression cannot be
// changed without decrypting it, so asking for another one is a usage error naming the layer,
// before anything is written; without such options, or asking for the compression it already
// has inside its encryption, the image copies byte for byte.
func TestCopyEncryptedLayerRefusesCompressionChange(t *testing.T) {
	t.Parallel()
	newSrc := func() (*fakeRef, []byte) {
		return newOCISource(t,
			srcLayer{makeLayer(t, 1, 10<<10, "gzip"), imgspecv1.MediaTypeImageLayerGzip, nil},
			srcLayer{makeLayer(t, 2, 10<<10, "gzip"), imgspecv1.MediaTypeImageLayerGzip + "+encrypted",
				map[string]string{"org.opencontainers.image.enc.keys.jwe": "e30="}})
	}
	for _, opts := range []Options{{DestinationCompression: "zstd"}, {DestinationDecompress: true}, {ForceManifestMIMEType: manifest.DockerV2Schema2MediaType}} {
		src, _ := newSrc()
		dest := newFakeRef("dest", newMemStore())
		err := expectFailure(t, dest, src, &opts)
		if types.Classify(err) != types.ClassUsage || !strings.Contains(err.Error(), "layer 1 is encrypted") {
			t.Errorf("options %+v: error %v, want a usage error about the encrypted layer 1", opts, err)
		}
		if n := dest.lastDest().totalPutBlobs(); n != 0 {
			t.Errorf("options %+v: %d blobs written before the refusal", opts, n)
		}
	}
	for _, opts := range []Options{{}, {DestinationCompression: "gzip"}} {
		src, srcManifest := newSrc()
		dest := newFakeRef("dest", newMemStore())
		if res := mustCopy(t, dest, src, &opts); string(res.Manifest) != string(srcManifest) {
			t.Errorf("options %+v: manifest changed: %s", opts, res.Manifest)
		}
	}
}

// TestCopyPreserveDigestsNamesTheLayer: --preserve-digests with a compression change says
// which layer would change and how.
func TestCopyPreserveDigestsNamesTheLayer(t *testing.T) {
	t.Parallel()
	src, _ := newOCISource(t,
		srcLayer{makeLayer(t, 1, 10<<10, "zstd"), imgspecv1.MediaTypeImageLayerZstd, nil},
		srcLayer{makeLayer(t, 2, 10<<10, "gzip"), imgspecv1.MediaTypeImageLayerGzip, nil})
	dest := newFakeRef("dest", newMemStore())
	err := expectFailure(t, dest, src, &Options{DestinationCompression: "zstd", PreserveDigests: true})
	if want := "preserving digests: layer 1 would be recompressed from gzip to zstd, so its digest and the manifest's would change"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestCopySchema2RefusesOCIOnlyFieldsFirst: an OCI manifest with a subject or an artifactType
// copied where only Docker schema2 may be written (--format v2s2) is refused before any blob
// is written; the conversion, after the blobs, failed with every layer uploaded already.
func TestCopySchema2RefusesOCIOnlyFieldsFirst(t *testing.T) {
	for _, tc := range []struct{ name, field, want string }{
		{"subject", "subject", "subject"},
		{"artifactType", "artifactType", "artifactType"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore()
			img := putImage(t, s, imgspecv1.MediaTypeImageManifest, "amd64", []testLayer{makeLayer(t, 1, 8<<10, "gzip")}, nil)
			var m map[string]any
			if err := json.Unmarshal(img.manifest, &m); err != nil {
				t.Fatal(err)
			}
			if tc.field == "subject" {
				m["subject"] = map[string]any{"mediaType": imgspecv1.MediaTypeImageManifest, "digest": digest.FromString("other"), "size": 5}
			} else {
				m["artifactType"] = "application/vnd.example.thing"
			}
			b := mustJSON(t, m)
			s.addInstance(b, imgspecv1.MediaTypeImageManifest)
			s.setTop(b, imgspecv1.MediaTypeImageManifest)
			dest := newFakeRef("dest", newMemStore())
			var puts atomic.Int32
			dest.dest.onPut = func(types.BlobInfo) { puts.Add(1) }
			_, err := Image(context.Background(), dest, newFakeRef("src", s), &Options{ForceManifestMIMEType: manifest.DockerV2Schema2MediaType})
			if !errors.Is(err, types.ErrConversionLoss) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a conversion loss naming the %s", err, tc.want)
			}
			if n := puts.Load(); n != 0 {
				t.Errorf("%d blobs written before the refusal", n)
			}
		})
	}
}
