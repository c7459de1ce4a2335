package tarfile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

func readBlob(t *testing.T, src types.ImageSource, info types.BlobInfo) []byte {
	t.Helper()
	rc, size, err := src.GetBlob(context.Background(), info, types.GetBlobOptions{})
	if err != nil {
		t.Fatalf("GetBlob %s: %v", info.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading blob %s: %v", info.Digest, err)
	}
	if size != int64(len(b)) {
		t.Errorf("GetBlob %s: size %d, read %d bytes", info.Digest, size, len(b))
	}
	if digest.FromBytes(b) != info.Digest {
		t.Errorf("GetBlob %s served bytes with digest %s", info.Digest, digest.FromBytes(b))
	}
	return b
}

func TestReadFlavours(t *testing.T) {
	img := newTestImage(t, 2, "amd64")
	d25, d25Manifest := docker25Members(t, img, "busybox:latest")
	gzMembers, gzBlobs := craneMembers(t, img, "busybox:latest", gzipData)
	zstMembers, zstBlobs := craneMembers(t, img, "busybox:latest", zstdData)
	cases := []struct {
		name         string
		archive      []byte
		wantManifest []byte // exact bytes, when preserved
		wantType     string
		wantLayers   []digest.Digest
		wantLayerMT  string
	}{
		{name: "classic with legacy symlinks", archive: buildTar(t, classicMembers(t, img, "busybox:latest")),
			wantType: manifest.DockerV2Schema2MediaType, wantLayers: img.diffIDs, wantLayerMT: manifest.DockerV2SchemaLayerMediaTypeUncompressed},
		{name: "docker 25 OCI layout", archive: buildTar(t, d25), wantManifest: d25Manifest,
			wantType: imgspecv1.MediaTypeImageManifest, wantLayers: img.diffIDs, wantLayerMT: imgspecv1.MediaTypeImageLayer},
		{name: "crane gzip layers", archive: buildTar(t, gzMembers),
			wantType: manifest.DockerV2Schema2MediaType, wantLayers: digests(gzBlobs), wantLayerMT: manifest.DockerV2Schema2LayerMediaType},
		{name: "zstd layers", archive: buildTar(t, zstMembers),
			wantType: imgspecv1.MediaTypeImageManifest, wantLayers: digests(zstBlobs), wantLayerMT: imgspecv1.MediaTypeImageLayerZstd},
		{name: "gzip-compressed archive", archive: gzipData(t, buildTar(t, classicMembers(t, img, "busybox:latest"))),
			wantType: manifest.DockerV2Schema2MediaType, wantLayers: img.diffIDs, wantLayerMT: manifest.DockerV2SchemaLayerMediaTypeUncompressed},
		{name: "zstd-compressed archive", archive: zstdData(t, buildTar(t, classicMembers(t, img, "busybox:latest"))),
			wantType: manifest.DockerV2Schema2MediaType, wantLayers: img.diffIDs, wantLayerMT: manifest.DockerV2SchemaLayerMediaTypeUncompressed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			sys := &types.SystemContext{BigFilesTemporaryDir: tmp}
			src, err := openSource(t, writeArchive(t, tc.archive), sys, "busybox:latest", -1)
			if err != nil {
				t.Fatal(err)
			}
			b, mt, err := src.GetManifest(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantManifest != nil && !bytes.Equal(b, tc.wantManifest) {
				t.Errorf("manifest not preserved:\n got %s\nwant %s", b, tc.wantManifest)
			}
			if mt != tc.wantType {
				t.Errorf("manifest type %q, want %q", mt, tc.wantType)
			}
			m, err := manifest.FromBlob(b, mt)
			if err != nil {
				t.Fatalf("synthesized manifest does not parse: %v\n%s", err, b)
			}
			if m.ConfigInfo().Digest != img.configDigest() {
				t.Errorf("config %s, want %s", m.ConfigInfo().Digest, img.configDigest())
			}
			readBlob(t, src, m.ConfigInfo())
			for i, l := range m.LayerInfos() {
				if l.Digest != tc.wantLayers[i] || l.MediaType != tc.wantLayerMT {
					t.Errorf("layer %d: %s %s, want %s %s", i, l.Digest, l.MediaType, tc.wantLayers[i], tc.wantLayerMT)
				}
				readBlob(t, src, l.BlobInfo)
			}
			inst := digest.FromBytes(b)
			if again, _, err := src.GetManifest(context.Background(), &inst); err != nil || !bytes.Equal(again, b) {
				t.Errorf("GetManifest(own digest): %v", err)
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temporary files left after Close: %v", left)
			}
		})
	}
}

func digests(blobs [][]byte) []digest.Digest {
	var res []digest.Digest
	for _, b := range blobs {
		res = append(res, digest.FromBytes(b))
	}
	return res
}

func TestReadMultiImage(t *testing.T) {
	a, b := newTestImage(t, 1, "amd64"), newTestImage(t, 2, "arm64")
	ma, mb := classicMembers(t, a, "a:1"), classicMembers(t, b, "quay.io/x/b:2", "b:latest")
	var items []ManifestItem
	var ms []member
	seen := map[string]bool{}
	for _, m := range append(ma, mb...) {
		switch m.name {
		case "manifest.json":
			var it []ManifestItem
			mustUnmarshal(t, m.data, &it)
			items = append(items, it...)
		case "repositories":
		default:
			if !seen[m.name] { // shared layers are stored once
				ms = append(ms, m)
			}
			seen[m.name] = true
		}
	}
	path := writeArchive(t, buildTar(t, append(ms, member{name: "manifest.json", data: mustJSON(t, items)})))
	cases := []struct {
		name       string
		ref        string
		index      int
		wantConfig digest.Digest
		wantErr    error
	}{
		{name: "by short name", ref: "a:1", index: -1, wantConfig: a.configDigest()},
		{name: "by full name", ref: "docker.io/library/b:latest", index: -1, wantConfig: b.configDigest()},
		{name: "other registry", ref: "quay.io/x/b:2", index: -1, wantConfig: b.configDigest()},
		{name: "by index", index: 1, wantConfig: b.configDigest()},
		{name: "index out of range", index: 2, wantErr: types.ErrManifestNotFound},
		{name: "unknown name", ref: "c:1", index: -1, wantErr: types.ErrManifestNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := openSource(t, path, nil, tc.ref, tc.index)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("want %v, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, mt, err := src.GetManifest(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := manifest.FromBlob(b, mt)
			if err != nil {
				t.Fatal(err)
			}
			if m.ConfigInfo().Digest != tc.wantConfig {
				t.Errorf("config %s, want %s", m.ConfigInfo().Digest, tc.wantConfig)
			}
		})
	}
	if _, err := openSource(t, path, nil, "", -1); err == nil || !strings.Contains(err.Error(), "holds 2 images") || types.Classify(err) != types.ClassUsage {
		t.Errorf("opening a multi-image archive without a name: %v (class %v, want usage)", err, types.Classify(err))
	}
}

func TestUncompressedLayerMismatchNamesLayer(t *testing.T) {
	img := newTestImage(t, 2, "amd64")
	ms := classicMembers(t, img, "x:1")
	for i := range ms { // corrupt the second layer's content, keeping its size
		if ms[i].name == img.diffIDs[1].Encoded()+".tar" {
			c := bytes.Clone(ms[i].data)
			c[0] ^= 0xff
			ms[i].data = c
		}
	}
	src, err := openSource(t, writeArchive(t, buildTar(t, ms)), nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: img.diffIDs[1], Size: -1}, types.GetBlobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	if !errors.Is(err, types.ErrDigestMismatch) || !strings.Contains(err.Error(), "/layer.tar") || !strings.Contains(err.Error(), "diff ID") {
		t.Errorf("want a digest mismatch naming the layer, got %v", err)
	}
}

func TestMissingBlobAndInstance(t *testing.T) {
	img := newTestImage(t, 1, "amd64")
	src, err := openSource(t, writeArchive(t, buildTar(t, classicMembers(t, img))), nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: digest.FromString("nope")}, types.GetBlobOptions{}); !errors.Is(err, types.ErrBlobNotFound) {
		t.Errorf("missing blob: want ErrBlobNotFound, got %v", err)
	}
	d := digest.FromString("nope")
	if _, _, err := src.GetManifest(context.Background(), &d); !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("missing instance: want ErrManifestNotFound, got %v", err)
	}
}

// TestReadDocker25PartialIndex reads a Docker 25 save of one platform of a multi-platform
// image: index.json names the whole index, but only one instance is in the archive.
func TestReadDocker25PartialIndex(t *testing.T) {
	img := newTestImage(t, 1, "amd64")
	ms, m := docker25Members(t, img, "multi:1")
	ms = withNestedIndex(t, ms,
		imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString("absent arm64"), Size: 10, Platform: &imgspecv1.Platform{OS: "linux", Architecture: "arm64"}},
		imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)), Platform: &imgspecv1.Platform{OS: "linux", Architecture: "amd64"}})
	src, err := openSource(t, writeArchive(t, buildTar(t, ms)), nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	got, mt, err := src.GetManifest(context.Background(), nil)
	if err != nil || !bytes.Equal(got, m) || mt != imgspecv1.MediaTypeImageManifest {
		t.Errorf("want the present instance's manifest, got %s %s (%v)", mt, got, err)
	}
}

// TestReadSignedSchema1Instance reads a libtrust-signed schema1 instance of an index in the
// archive's OCI part: its blob is named by the registry digest, over the signed payload, so it
// must be checked with manifest.CheckDigest rather than by hashing the stored bytes.
func TestReadSignedSchema1Instance(t *testing.T) {
	signed, err := os.ReadFile("../../manifest/testdata/schema1-signed.json")
	if err != nil {
		t.Fatal(err)
	}
	dg, err := manifest.Digest(signed)
	if err != nil || dg == digest.FromBytes(signed) {
		t.Fatalf("fixture: registry digest %s (%v) must differ from the digest of the bytes", dg, err)
	}
	img := newTestImage(t, 1, "amd64")
	ms, m := docker25Members(t, img, "s1:1")
	ms = withNestedIndex(t, ms,
		imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)), Platform: &imgspecv1.Platform{OS: "linux", Architecture: "amd64"}},
		imgspecv1.Descriptor{MediaType: manifest.DockerV2Schema1SignedMediaType, Digest: dg, Size: int64(len(signed)), Platform: &imgspecv1.Platform{OS: "linux", Architecture: "386"}})
	ms = append(ms, member{name: "blobs/sha256/" + dg.Encoded(), data: signed})
	src, err := openSource(t, writeArchive(t, buildTar(t, ms)), nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := src.GetManifest(context.Background(), &dg)
	if err != nil || !bytes.Equal(got, signed) {
		t.Errorf("reading the schema1 instance by its registry digest: %v", err)
	}
}

// TestReadCraneSharedConfig reads a crane tarball of two tags of one image: crane writes the
// shared config twice.
func TestReadCraneSharedConfig(t *testing.T) {
	img := newTestImage(t, 1, "amd64")
	ms, _ := craneMembers(t, img, "a:1", gzipData)
	var items []ManifestItem
	mustUnmarshal(t, ms[len(ms)-1].data, &items)
	second := items[0]
	second.RepoTags = []string{"b:2"}
	items = append(items, second)
	ms = append(ms[:len(ms)-1], ms[0], member{name: "manifest.json", data: mustJSON(t, items)})
	path := writeArchive(t, buildTar(t, ms))
	for _, name := range []string{"a:1", "b:2"} {
		src, err := openSource(t, path, nil, name, -1)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := src.GetManifest(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads src's manifest and every blob it references to the end, as a copy or verify
// does, and returns the first error.
func readAll(src types.ImageSource) error {
	ctx := context.Background()
	b, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return err
	}
	m, err := manifest.FromBlob(b, mt)
	if err != nil {
		return err
	}
	infos := []types.BlobInfo{m.ConfigInfo()}
	for _, l := range m.LayerInfos() {
		infos = append(infos, l.BlobInfo)
	}
	for _, info := range infos {
		rc, _, err := src.GetBlob(ctx, info, types.GetBlobOptions{})
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// TestContentThatDoesNotMatchItsDigest damages an archive where nothing else would notice:
// a config whose member name is its digest (each writer's naming), and a compressed layer,
// whose digest is computed from its bytes, so only its diff ID can tell, once it is read.
func TestContentThatDoesNotMatchItsDigest(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 2, "amd64")
	flipped := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 0x01
		return c
	}
	badConfig := flipped(img.config)
	otherLayer := gzipData(t, buildTar(t, []member{{name: "other.txt", data: []byte("not the layer of the config")}}))
	withMember := func(ms []member, name string, data []byte) []member {
		return replaceMember(ms, member{name: name, data: data})
	}
	crane, blobs := craneMembers(t, img, "x:1", gzipData)
	craneLayer1 := digest.FromBytes(blobs[1]).Encoded() + ".tar.gz"
	d25, d25Manifest := docker25Members(t, img, "x:1")
	d25ManifestName := "blobs/sha256/" + digest.FromBytes(d25Manifest).Encoded()
	nested := withNestedIndex(t, d25, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromBytes(d25Manifest), Size: int64(len(d25Manifest))})
	cases := []struct {
		name    string
		members []member
		wantMsg string
	}{
		{name: "classic config <hex>.json", members: withMember(classicMembers(t, img, "x:1"), img.configDigest().Encoded()+".json", badConfig),
			wantMsg: "does not match the digest it is named after"},
		{name: "crane config sha256:<hex>", members: withMember(crane, img.configDigest().String(), badConfig),
			wantMsg: "does not match the digest it is named after"},
		{name: "Docker 25 config blobs/sha256/<hex>", members: withMember(d25, "blobs/sha256/"+img.configDigest().Encoded(), badConfig),
			wantMsg: "does not match the digest it is named after"},
		// The OCI part's manifest: reading the image from manifest.json instead would change
		// its digest without a word.
		{name: "Docker 25 manifest", members: withMember(d25, d25ManifestName, flipped(d25Manifest)),
			wantMsg: "a manifest in index.json"},
		{name: "Docker 25 instance of an index", members: withMember(nested, d25ManifestName, flipped(d25Manifest)),
			wantMsg: "a manifest in index.json"},
		{name: "crane layer corrupt gzip", members: withMember(crane, craneLayer1, flipped(blobs[1])),
			wantMsg: "content is corrupt"},
		{name: "crane layer of other content", members: withMember(crane, craneLayer1, otherLayer),
			wantMsg: "does not decompress to its diff ID"},
		{name: "crane layer zstd of other content", members: withMember(crane, craneLayer1, zstdData(t, img.layers[0])),
			wantMsg: "does not decompress to its diff ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := openSource(t, writeArchive(t, buildTar(t, tc.members)), nil, "", -1)
			if err == nil {
				defer src.Close()
				err = readAll(src)
			}
			if !errors.Is(err, types.ErrDigestMismatch) || types.Classify(err) != types.ClassVerification || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("want a digest mismatch (%q), got %v", tc.wantMsg, err)
			}
		})
	}
}

// TestCompressedLayerClosedEarly closes a compressed layer read only in part (a copy that
// failed elsewhere): the diff ID check behind it stops, and nothing blocks.
func TestCompressedLayerClosedEarly(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 1, "amd64")
	ms, blobs := craneMembersNamed(t, img, "x:1", gzipData, func(i int, _ []byte) string { return fmt.Sprintf("layer%d.tar.gz", i) })
	src := synthesizedSource(t, ms)
	for range 3 {
		rc := mustGetBlob(t, src, digest.FromBytes(blobs[0]))
		if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNamedCompressedLayerNotDecompressed: a compressed layer whose member name carries its
// digest (crane's <hex>.tar.gz), and whose bytes matched it when the manifest was made, is
// served checked against that digest, without a copy decompressed for its diff ID; a layer
// named otherwise, or named after other bytes, gets the diff ID check.
func TestNamedCompressedLayerNotDecompressed(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 1, "amd64")
	cases := []struct {
		name       string
		layerName  func(i int, c []byte) string
		wantDiffID bool
	}{
		{"crane <hex>.tar.gz", func(_ int, c []byte) string { return digest.FromBytes(c).Encoded() + ".tar.gz" }, false},
		{"<hex>.tar.zst", func(_ int, c []byte) string { return digest.FromBytes(c).Encoded() + ".tar.zst" }, false},
		{"blobs/sha256/<hex>", func(_ int, c []byte) string { return "blobs/sha256/" + digest.FromBytes(c).Encoded() }, false},
		{"no digest in the name", func(i int, _ []byte) string { return fmt.Sprintf("layer%d.tar.gz", i) }, true},
		{"another digest in the name", func(_ int, _ []byte) string { return digest.FromString("other").Encoded() + ".tar.gz" }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ms, blobs := craneMembersNamed(t, img, "x:1", gzipData, tc.layerName)
			rc := mustGetBlob(t, synthesizedSource(t, ms), digest.FromBytes(blobs[0]))
			defer rc.Close()
			if _, isDiffID := rc.(*diffIDReader); isDiffID != tc.wantDiffID {
				t.Errorf("served with the diff ID check: %v, want %v", isDiffID, tc.wantDiffID)
			}
			if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, blobs[0]) {
				t.Errorf("read %d bytes, %v; want the layer", len(b), err)
			}
		})
	}
}

// synthesizedSource opens the only image of an archive of members ms and has its manifest made.
func synthesizedSource(t *testing.T, ms []member) types.ImageSource {
	t.Helper()
	src, err := openSource(t, writeArchive(t, buildTar(t, ms)), nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if _, _, err := src.GetManifest(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return src
}

// mustGetBlob opens blob d of src.
func mustGetBlob(t *testing.T, src types.ImageSource, d digest.Digest) io.ReadCloser {
	t.Helper()
	rc, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: d, Size: -1}, types.GetBlobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}
