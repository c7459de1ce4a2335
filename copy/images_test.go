package copy

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
)

// Deterministic test images built in memory.

type testLayer struct {
	uncompressed []byte
	blob         []byte
	diffID       digest.Digest
	compression  string
}

func (l testLayer) digest() digest.Digest { return digest.FromBytes(l.blob) }

// makeLayer returns a layer of n pseudo-random but compressible bytes.
func makeLayer(t testing.TB, seed int64, n int, compression string) testLayer {
	t.Helper()
	rnd := rand.New(rand.NewSource(seed))
	words := []string{"alpha ", "beta ", "gamma ", "delta ", "epsilon\n"}
	var buf bytes.Buffer
	for buf.Len() < n {
		buf.WriteString(words[rnd.Intn(len(words))])
	}
	raw := buf.Bytes()[:n]
	return testLayer{uncompressed: raw, blob: compressBytes(t, raw, compression), diffID: digest.FromBytes(raw), compression: compression}
}

func compressBytes(t testing.TB, raw []byte, compression string) []byte {
	t.Helper()
	var out bytes.Buffer
	switch compression {
	case "":
		return raw
	case "gzip":
		w := gzip.NewWriter(&out)
		w.Write(raw)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(raw)
		w.Close()
	}
	return out.Bytes()
}

// decompressBytes returns the uncompressed content of b (sniffed).
func decompressBytes(t testing.TB, b []byte) ([]byte, string) {
	t.Helper()
	r, c, err := decompressStream(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out, c
}

func layerType(mimeType, compression string) string {
	if mimeType == imgspecv1.MediaTypeImageManifest {
		return layerMediaType(imgspecv1.MediaTypeImageLayer, compression)
	}
	return layerMediaType(manifest.DockerV2Schema2LayerMediaType, compression)
}

// testImage is a single image stored in a memStore.
type testImage struct {
	manifest []byte
	mimeType string
	digest   digest.Digest
	config   []byte
	layers   []testLayer
}

func (i testImage) configDigest() digest.Digest { return digest.FromBytes(i.config) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// makeConfig returns an image config listing the layers' diff IDs.
func makeConfig(t testing.TB, arch string, layers []testLayer) []byte {
	t.Helper()
	var ids []digest.Digest
	for _, l := range layers {
		ids = append(ids, l.diffID)
	}
	return mustJSON(t, map[string]any{
		"architecture": arch, "os": "linux", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": ids},
	})
}

// putImage stores the blobs and a schema2 or OCI manifest of an image in s; the manifest is
// not set as top-level.
func putImage(t testing.TB, s *memStore, mimeType, arch string, layers []testLayer, config []byte) testImage {
	t.Helper()
	if config == nil {
		config = makeConfig(t, arch, layers)
	}
	s.putBlob(config)
	configType := manifest.DockerV2Schema2ConfigMediaType
	if mimeType == imgspecv1.MediaTypeImageManifest {
		configType = imgspecv1.MediaTypeImageConfig
	}
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "size": len(b), "digest": digest.FromBytes(b)}
	}
	var ls []map[string]any
	for _, l := range layers {
		s.putBlob(l.blob)
		ls = append(ls, desc(layerType(mimeType, l.compression), l.blob))
	}
	m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": mimeType, "config": desc(configType, config), "layers": ls})
	d := s.addInstance(m, mimeType)
	return testImage{manifest: m, mimeType: mimeType, digest: d, config: config, layers: layers}
}

// newSingleSource stores a single image as the top-level manifest of a new store.
func newSingleSource(t testing.TB, mimeType string, layers ...testLayer) (*fakeRef, testImage) {
	t.Helper()
	s := newMemStore()
	img := putImage(t, s, mimeType, "amd64", layers, nil)
	s.setTop(img.manifest, img.mimeType)
	return newFakeRef("src", s), img
}

// newIndexSource stores one image per architecture (sharing the first layer) and an index.
func newIndexSource(t testing.TB, indexType string, archs ...string) (*fakeRef, []testImage, []byte) {
	t.Helper()
	s := newMemStore()
	shared := makeLayer(t, 1, 40<<10, "gzip")
	mimeType := manifest.DockerV2Schema2MediaType
	if indexType == imgspecv1.MediaTypeImageIndex {
		mimeType = imgspecv1.MediaTypeImageManifest
	}
	var imgs []testImage
	var entries []map[string]any
	for i, arch := range archs {
		img := putImage(t, s, mimeType, arch, []testLayer{shared, makeLayer(t, int64(100+i), 20<<10, "gzip")}, nil)
		imgs = append(imgs, img)
		entries = append(entries, map[string]any{"mediaType": mimeType, "size": len(img.manifest), "digest": img.digest,
			"platform": map[string]any{"os": "linux", "architecture": arch}})
	}
	idx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": indexType, "manifests": entries})
	s.setTop(idx, indexType)
	return newFakeRef("src", s), imgs, idx
}

// newSchema1Source stores an unsigned schema1 image: base layer, an empty (throwaway) layer
// and a top layer, returned base first.
func newSchema1Source(t testing.TB) (*fakeRef, []byte, []testLayer) {
	t.Helper()
	s := newMemStore()
	layers := []testLayer{makeLayer(t, 1, 50<<10, "gzip"), makeLayer(t, 2, 1024, "gzip"), makeLayer(t, 3, 20<<10, "gzip")}
	layers[1].uncompressed = make([]byte, 1024)
	layers[1].blob = compressBytes(t, layers[1].uncompressed, "gzip")
	layers[1].diffID = digest.FromBytes(layers[1].uncompressed)
	var fs []map[string]any
	var history []map[string]any
	ids := []string{"a", "b", "c"}          // hex v1 IDs for base, empty, top
	for i := len(layers) - 1; i >= 0; i-- { // newest first
		s.putBlob(layers[i].blob)
		fs = append(fs, map[string]any{"blobSum": layers[i].digest()})
		compat := map[string]any{"id": strings.Repeat(ids[i][:1], 64), "created": "2020-01-01T00:00:00Z",
			"container_config": map[string]any{"Cmd": []string{"/bin/sh -c step " + ids[i]}}}
		if i > 0 {
			compat["parent"] = strings.Repeat(ids[i-1][:1], 64)
		}
		if i == 1 {
			compat["throwaway"] = true
		}
		if i == len(layers)-1 {
			compat["architecture"], compat["os"] = "amd64", "linux"
			compat["config"] = map[string]any{"Cmd": []string{"sh"}}
		}
		history = append(history, map[string]any{"v1Compatibility": string(mustJSON(t, compat))})
	}
	m := mustJSON(t, map[string]any{"schemaVersion": 1, "name": "test/s1", "tag": "latest", "architecture": "amd64", "fsLayers": fs, "history": history})
	s.setTop(m, manifest.DockerV2Schema1MediaType)
	return newFakeRef("src", s), m, layers
}
