package tarfile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	dref "github.com/distribution/reference"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/types"
)

// member is one entry of a hand-built test archive.
type member struct {
	name string
	data []byte
	link string // symlink target when set
	typ  byte   // tar.TypeReg when 0 and link is empty
}

func buildTar(t testing.TB, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		switch {
		case m.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, m.link, 0
		case m.typ != 0:
			hdr.Typeflag = m.typ
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write(m.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeArchive(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "archive.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testImage is a small image: uncompressed layer tars and a config listing their diff IDs.
type testImage struct {
	arch    string
	layers  [][]byte
	diffIDs []digest.Digest
	config  []byte
}

func (img testImage) configDigest() digest.Digest { return digest.FromBytes(img.config) }

func newTestImage(t testing.TB, layers int, arch string) testImage {
	t.Helper()
	img := testImage{arch: arch}
	for i := 0; i < layers; i++ {
		l := buildTar(t, []member{{name: fmt.Sprintf("file-%d.txt", i), data: []byte(fmt.Sprintf("layer %d content\n", i))}})
		img.layers = append(img.layers, l)
		img.diffIDs = append(img.diffIDs, digest.FromBytes(l))
	}
	created := time.Unix(0, 0).UTC()
	cfg := imgspecv1.Image{Created: &created, Platform: imgspecv1.Platform{OS: "linux", Architecture: arch},
		RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: img.diffIDs}}
	var err error
	if img.config, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

func gzipData(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdData(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// classicMembers lays img out as containers/image and old `docker save` do: config
// <hex>.json, layers <hex>.tar with legacy <id>/layer.tar symlinks that manifest.json names,
// <id>/VERSION and <id>/json, and a repositories file.
func classicMembers(t testing.TB, img testImage, tags ...string) []member {
	t.Helper()
	ms := []member{{name: img.configDigest().Encoded() + ".json", data: img.config}}
	item := ManifestItem{Config: img.configDigest().Encoded() + ".json", RepoTags: tags}
	parent := ""
	for i, l := range img.layers {
		id := digest.FromString(parent + img.diffIDs[i].String()).Encoded()
		ms = append(ms,
			member{name: img.diffIDs[i].Encoded() + ".tar", data: l},
			member{name: id + "/layer.tar", link: "../" + img.diffIDs[i].Encoded() + ".tar"},
			member{name: id + "/VERSION", data: []byte("1.0")},
			member{name: id + "/json", data: mustJSON(t, map[string]string{"id": id, "parent": parent})})
		item.Layers = append(item.Layers, id+"/layer.tar")
		parent = id
	}
	ms = append(ms, member{name: "manifest.json", data: mustJSON(t, []ManifestItem{item})})
	repos := map[string]map[string]string{}
	for _, tag := range tags {
		nt, err := parseRepoTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		repos[nt.Name()] = map[string]string{nt.Tag(): parent}
	}
	return append(ms, member{name: "repositories", data: mustJSON(t, repos)})
}

// docker25Members lays img out as Docker 25+ does: an OCI layout with uncompressed layers
// and manifest.json pointing into blobs/sha256/. It returns the OCI manifest too.
func docker25Members(t testing.TB, img testImage, tag string) ([]member, []byte) {
	t.Helper()
	blob := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	m := imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: img.configDigest(), Size: int64(len(img.config))}}
	ms := []member{{name: "blobs/", typ: tar.TypeDir}, {name: "blobs/sha256/", typ: tar.TypeDir}, {name: blob(img.configDigest()), data: img.config}}
	item := ManifestItem{Config: blob(img.configDigest()), RepoTags: []string{tag}}
	for i, l := range img.layers {
		m.Layers = append(m.Layers, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageLayer, Digest: img.diffIDs[i], Size: int64(len(l))})
		ms = append(ms, member{name: blob(img.diffIDs[i]), data: l})
		item.Layers = append(item.Layers, blob(img.diffIDs[i]))
	}
	mb := mustJSON(t, m)
	idx := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb)),
			Annotations: map[string]string{annotationContainerName: "docker.io/library/" + tag, annotationRefName: "latest"}}}}
	ms = append(ms,
		member{name: blob(digest.FromBytes(mb)), data: mb},
		member{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		member{name: "index.json", data: mustJSON(t, idx)},
		member{name: "manifest.json", data: mustJSON(t, []ManifestItem{item})})
	return ms, mb
}

// withNestedIndex makes the index.json of a docker25Members archive name one index (stored as
// a blob) whose instances are children, as Docker does for a multi-platform image.
func withNestedIndex(t testing.TB, ms []member, children ...imgspecv1.Descriptor) []member {
	t.Helper()
	idx := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: children}
	ib := mustJSON(t, idx)
	outer := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{
		{MediaType: imgspecv1.MediaTypeImageIndex, Digest: digest.FromBytes(ib), Size: int64(len(ib))}}}
	ms = replaceMember(ms, member{name: "index.json", data: mustJSON(t, outer)})
	return append(ms, member{name: "blobs/sha256/" + digest.FromBytes(ib).Encoded(), data: ib})
}

// craneMembers lays img out as crane does: config "sha256:<hex>", compressed layers
// <hex>.tar.gz (compress is gzipData or zstdData).
func craneMembers(t testing.TB, img testImage, tag string, compress func(testing.TB, []byte) []byte) ([]member, [][]byte) {
	t.Helper()
	return craneMembersNamed(t, img, tag, compress, func(_ int, c []byte) string { return digest.FromBytes(c).Encoded() + ".tar.gz" })
}

// craneMembersNamed is craneMembers with layer i (compressed content c) named name(i, c).
func craneMembersNamed(t testing.TB, img testImage, tag string, compress func(testing.TB, []byte) []byte, name func(i int, c []byte) string) ([]member, [][]byte) {
	t.Helper()
	ms := []member{{name: img.configDigest().String(), data: img.config}}
	item := ManifestItem{Config: img.configDigest().String(), RepoTags: []string{tag}}
	var blobs [][]byte
	for i, l := range img.layers {
		c := compress(t, l)
		n := name(i, c)
		ms = append(ms, member{name: n, data: c})
		item.Layers = append(item.Layers, n)
		blobs = append(blobs, c)
	}
	return append(ms, member{name: "manifest.json", data: mustJSON(t, []ManifestItem{item})}), blobs
}

// fakeRef is the reference sources and destinations report in tests.
type fakeRef struct{ named dref.Named }

var _ types.ImageReference = fakeRef{}

func (fakeRef) Transport() types.ImageTransport { return fakeTransport{} }
func (fakeRef) StringWithinTransport() string   { return "test" }
func (r fakeRef) DockerReference() dref.Named   { return r.named }
func (fakeRef) NewImageSource(context.Context, *types.SystemContext) (types.ImageSource, error) {
	return nil, nil
}
func (fakeRef) NewImageDestination(context.Context, *types.SystemContext) (types.ImageDestination, error) {
	return nil, nil
}

type fakeTransport struct{}

var _ types.ImageTransport = fakeTransport{}

func (fakeTransport) Name() string                                        { return "docker-archive" }
func (fakeTransport) ParseReference(string) (types.ImageReference, error) { return nil, nil }

func tagged(t testing.TB, s string) dref.NamedTagged {
	t.Helper()
	nt, err := parseRepoTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

// openSource opens image (by name, or @index when index >= 0) of the archive at path.
func openSource(t testing.TB, path string, sys *types.SystemContext, name string, index int) (types.ImageSource, error) {
	t.Helper()
	r, err := NewReader(context.Background(), path, sys)
	if err != nil {
		return nil, err
	}
	var nt dref.NamedTagged
	if name != "" {
		nt = tagged(t, name)
	}
	pos, err := r.Choose(nt, index)
	if err != nil {
		r.Close()
		return nil, err
	}
	src, err := NewSource(r, true, fakeRef{}, pos)
	if err != nil {
		r.Close()
		return nil, err
	}
	t.Cleanup(func() { src.Close() })
	return src, nil
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
