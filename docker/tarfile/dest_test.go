package tarfile

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

func putBlobs(t *testing.T, dest types.ImageDestination, img conformance.Image) {
	t.Helper()
	for i, b := range img.Blobs() {
		info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
		if _, ok, err := dest.TryReusingBlob(context.Background(), info, types.ReuseOptions{}); err != nil || ok {
			continue
		}
		if _, err := dest.PutBlob(context.Background(), bytes.NewReader(b.Data), info, types.PutBlobOptions{IsConfig: i == 0, LayerIndex: i - 1}); err != nil {
			t.Fatalf("PutBlob %s: %v", b.Digest, err)
		}
	}
}

// writeImage writes img as the only image of a new archive at path.
func writeImage(t *testing.T, path string, sys *types.SystemContext, img conformance.Image, names []dref.NamedTagged, opts types.CommitOptions) {
	t.Helper()
	w, err := NewWriter(context.Background(), path, WriterOptions{Classic: sys != nil && sys.DockerArchiveClassic})
	if err != nil {
		t.Fatal(err)
	}
	dest := NewDestination(w, true, fakeRef{}, names, sys)
	defer dest.Close()
	putBlobs(t, dest, img)
	if err := dest.PutManifest(context.Background(), img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
}

// tarMembers lists an archive's members with their link targets and contents (small files).
func tarMembers(t *testing.T, path string) (names []string, links map[string]string, files map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	links, files = map[string]string{}, map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, links, files
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Typeflag == tar.TypeSymlink {
			links[hdr.Name] = hdr.Linkname
		}
		if b, err := io.ReadAll(tr); err == nil {
			files[hdr.Name] = b
		}
	}
}

func buildImage(t *testing.T, opts conformance.ImageOptions) conformance.Image {
	t.Helper()
	img, err := conformance.BuildImage(opts)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestWriteDocker25Layout(t *testing.T) {
	img := buildImage(t, conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType})
	path := filepath.Join(t.TempDir(), "out.tar")
	writeImage(t, path, nil, img, []dref.NamedTagged{tagged(t, "example.com/app:v1")}, types.CommitOptions{})

	names, _, files := tarMembers(t, path)
	for _, want := range []string{"oci-layout", "index.json", "manifest.json", "repositories", "blobs/sha256/" + img.Digest.Encoded(), "blobs/sha256/" + img.Config.Digest.Encoded()} {
		if !slices.Contains(names, want) {
			t.Errorf("archive lacks %s: %v", want, names)
		}
	}
	var items []ManifestItem
	mustUnmarshal(t, files["manifest.json"], &items)
	want := ManifestItem{Config: "blobs/sha256/" + img.Config.Digest.Encoded(), RepoTags: []string{"example.com/app:v1"},
		Layers: []string{"blobs/sha256/" + img.Layers[0].Digest.Encoded(), "blobs/sha256/" + img.Layers[1].Digest.Encoded()}}
	if len(items) != 1 || !equalItems(items[0], want) {
		t.Errorf("manifest.json %s, want %+v", files["manifest.json"], want)
	}
	var idx imgspecv1.Index
	mustUnmarshal(t, files["index.json"], &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != img.Digest || idx.Manifests[0].MediaType != img.MIMEType ||
		idx.Manifests[0].Annotations[annotationRefName] != "example.com/app:v1" || idx.Manifests[0].Annotations[annotationContainerName] != "example.com/app:v1" {
		t.Errorf("index.json %s", files["index.json"])
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout %s", files["oci-layout"])
	}
	var repos map[string]map[string]string
	mustUnmarshal(t, files["repositories"], &repos)
	if repos["example.com/app"]["v1"] == "" {
		t.Errorf("repositories %s", files["repositories"])
	}

	src, err := openSource(t, path, nil, "example.com/app:v1", -1)
	if err != nil {
		t.Fatal(err)
	}
	got, mt, err := src.GetManifest(context.Background(), nil)
	if err != nil || !bytes.Equal(got, img.Manifest) || mt != img.MIMEType {
		t.Errorf("manifest not preserved (%v): %s %s", err, mt, got)
	}
}

func equalItems(a, b ManifestItem) bool {
	return a.Config == b.Config && slices.Equal(a.RepoTags, b.RepoTags) && slices.Equal(a.Layers, b.Layers)
}

func TestWriteClassicLayout(t *testing.T) {
	img := buildImage(t, conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType, Uncompressed: true, Layers: 3})
	path := filepath.Join(t.TempDir(), "out.tar")
	sys := &types.SystemContext{DockerArchiveClassic: true}
	w, err := NewWriter(context.Background(), path, WriterOptions{Classic: true})
	if err != nil {
		t.Fatal(err)
	}
	dest := NewDestination(w, true, fakeRef{}, []dref.NamedTagged{tagged(t, "busybox:1")}, sys)
	props := dest.Properties()
	if props.DesiredLayerCompression != types.Decompress || !slices.Equal(props.SupportedManifestMIMETypes, []string{manifest.DockerV2Schema2MediaType}) || props.AcceptsIndex {
		t.Errorf("classic properties %+v", props)
	}
	dest.Close()
	writeImage(t, path, sys, img, []dref.NamedTagged{tagged(t, "busybox:1")}, types.CommitOptions{})

	names, links, files := tarMembers(t, path)
	if slices.Contains(names, "index.json") || slices.Contains(names, "oci-layout") {
		t.Errorf("classic archive has an OCI layout: %v", names)
	}
	if !slices.Contains(names, img.Config.Digest.Encoded()+".json") {
		t.Errorf("classic archive lacks the config: %v", names)
	}
	var items []ManifestItem
	mustUnmarshal(t, files["manifest.json"], &items)
	for i, l := range img.Layers {
		if items[0].Layers[i] != l.Digest.Encoded()+".tar" {
			t.Errorf("layer %d stored as %s", i, items[0].Layers[i])
		}
	}
	if len(links) != 3 {
		t.Errorf("want 3 legacy layer.tar links, got %v", links)
	}
	for name, target := range links {
		if !strings.HasSuffix(name, "/layer.tar") || !strings.HasPrefix(target, "../") || !strings.HasSuffix(target, ".tar") {
			t.Errorf("legacy link %s -> %s", name, target)
		}
		if string(files[strings.TrimSuffix(name, "layer.tar")+"VERSION"]) != "1.0" {
			t.Errorf("no VERSION beside %s", name)
		}
	}
	var repos map[string]map[string]string
	mustUnmarshal(t, files["repositories"], &repos)
	top := repos["docker.io/library/busybox"]["1"]
	if _, ok := files[top+"/json"]; !ok {
		t.Errorf("repositories %s does not name a legacy layer", files["repositories"])
	}

	src, err := openSource(t, path, nil, "busybox:1", -1)
	if err != nil {
		t.Fatal(err)
	}
	got, mt, err := src.GetManifest(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if mt != manifest.DockerV2Schema2MediaType {
		t.Errorf("type %s", mt)
	}
	m, err := manifest.FromBlob(got, mt)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range m.LayerInfos() {
		if l.Digest != img.Layers[i].Digest {
			t.Errorf("layer %d read back as %s, want %s", i, l.Digest, img.Layers[i].Digest)
		}
	}
}

func TestWriteMultiArch(t *testing.T) {
	idx, err := conformance.BuildIndex(imgspecv1.MediaTypeImageIndex, false)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.tar")
	sys := &types.SystemContext{OSChoice: "linux", ArchitectureChoice: "arm64"}
	w, err := NewWriter(context.Background(), path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dest := NewDestination(w, true, fakeRef{}, []dref.NamedTagged{tagged(t, "multi:v1")}, sys)
	defer dest.Close()
	for _, inst := range idx.Instances {
		putBlobs(t, dest, inst)
		d := inst.Digest
		if err := dest.PutManifest(context.Background(), inst.Manifest, inst.MIMEType, &d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(context.Background(), idx.Manifest, idx.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, files := tarMembers(t, path)
	var items []ManifestItem
	mustUnmarshal(t, files["manifest.json"], &items)
	arm := idx.Instances[1]
	if arm.Platform.Architecture != "arm64" || len(items) != 1 || items[0].Config != "blobs/sha256/"+arm.Config.Digest.Encoded() {
		t.Errorf("manifest.json does not list the arm64 image: %s", files["manifest.json"])
	}
	var oci imgspecv1.Index
	mustUnmarshal(t, files["index.json"], &oci)
	if len(oci.Manifests) != 1 || oci.Manifests[0].Digest != idx.Digest {
		t.Errorf("index.json does not name the index: %s", files["index.json"])
	}

	src, err := openSource(t, path, nil, "multi:v1", -1)
	if err != nil {
		t.Fatal(err)
	}
	got, mt, err := src.GetManifest(context.Background(), nil)
	if err != nil || !bytes.Equal(got, idx.Manifest) || mt != idx.MIMEType {
		t.Fatalf("index not preserved (%v): %s", err, got)
	}
	for _, inst := range idx.Instances {
		d := inst.Digest
		got, _, err := src.GetManifest(context.Background(), &d)
		if err != nil || !bytes.Equal(got, inst.Manifest) {
			t.Errorf("instance %s (%v): %s", d, err, got)
		}
		for _, b := range inst.Blobs() {
			readBlob(t, src, types.BlobInfo{Digest: b.Digest})
		}
	}
}

func TestWriteNames(t *testing.T) {
	img := buildImage(t, conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Layers: 1})
	srcRef := fakeRef{named: tagged(t, "quay.io/src/img:3")}
	cases := []struct {
		name    string
		names   []dref.NamedTagged
		opts    types.CommitOptions
		want    []string
		wantAnn []string
	}{
		{name: "reference name and additional tags", names: []dref.NamedTagged{tagged(t, "a:1"), tagged(t, "b:2")}, opts: types.CommitOptions{SourceReference: srcRef},
			want: []string{"docker.io/library/a:1", "docker.io/library/b:2"}, wantAnn: []string{"docker.io/library/a:1", "docker.io/library/b:2"}},
		{name: "source reference when unnamed", opts: types.CommitOptions{SourceReference: srcRef},
			want: []string{"quay.io/src/img:3"}, wantAnn: []string{"quay.io/src/img:3"}},
		{name: "untagged source reference is not used", opts: types.CommitOptions{SourceReference: fakeRef{named: mustNamed(t, "quay.io/src/img")}},
			want: []string{}, wantAnn: []string{""}},
		{name: "no name at all", want: []string{}, wantAnn: []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.tar")
			writeImage(t, path, nil, img, tc.names, tc.opts)
			_, _, files := tarMembers(t, path)
			var items []ManifestItem
			mustUnmarshal(t, files["manifest.json"], &items)
			if !slices.Equal(items[0].RepoTags, tc.want) {
				t.Errorf("RepoTags %v, want %v", items[0].RepoTags, tc.want)
			}
			var idx imgspecv1.Index
			mustUnmarshal(t, files["index.json"], &idx)
			var ann []string
			for _, m := range idx.Manifests {
				ann = append(ann, m.Annotations[annotationRefName])
			}
			if !slices.Equal(ann, tc.wantAnn) {
				t.Errorf("index.json names %v, want %v", ann, tc.wantAnn)
			}
		})
	}
}

func mustNamed(t *testing.T, s string) dref.Named {
	n, err := dref.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	img := buildImage(t, conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType})
	errBoom := errors.New("boom")
	cases := []struct {
		name string
		run  func(t *testing.T, dest types.ImageDestination) error
	}{
		{name: "failing stream", run: func(t *testing.T, dest types.ImageDestination) error {
			l := img.Layers[0]
			_, err := dest.PutBlob(context.Background(), &failingReader{data: l.Data[:100], err: errBoom}, types.BlobInfo{Digest: l.Digest, Size: int64(len(l.Data))}, types.PutBlobOptions{})
			return err
		}},
		{name: "failing stream of unknown size", run: func(t *testing.T, dest types.ImageDestination) error {
			l := img.Layers[0]
			_, err := dest.PutBlob(context.Background(), &failingReader{data: l.Data[:100], err: errBoom}, types.BlobInfo{Digest: l.Digest, Size: -1}, types.PutBlobOptions{})
			return err
		}},
		{name: "commit with a missing layer", run: func(t *testing.T, dest types.ImageDestination) error {
			cfg := img.Config
			if _, err := dest.PutBlob(context.Background(), bytes.NewReader(cfg.Data), types.BlobInfo{Digest: cfg.Digest, Size: int64(len(cfg.Data))}, types.PutBlobOptions{IsConfig: true}); err != nil {
				t.Fatal(err)
			}
			if err := dest.PutManifest(context.Background(), img.Manifest, img.MIMEType, nil); err != nil {
				t.Fatal(err)
			}
			return dest.Commit(context.Background(), types.CommitOptions{})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.tar")
			w, err := NewWriter(context.Background(), path, WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			dest := NewDestination(w, true, fakeRef{}, nil, nil)
			if err := tc.run(t, dest); err == nil {
				t.Fatal("expected a failure")
			}
			if err := dest.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("files left after a failed write: %v", left)
			}
		})
	}
}

// newTestArchive starts a docker-archive destination for a schema2 test image.
func newTestArchive(t *testing.T) (conformance.Image, string, *Writer, types.ImageDestination) {
	t.Helper()
	img := buildImage(t, conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType})
	path := filepath.Join(t.TempDir(), "out.tar")
	w, err := NewWriter(context.Background(), path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dest := NewDestination(w, true, fakeRef{}, nil, nil)
	t.Cleanup(func() { dest.Close() })
	return img, path, w, dest
}

// TestFailedBlobIsRolledBack checks that a blob that fails midway leaves no member behind
// and that the archive can still be completed.
func TestFailedBlobIsRolledBack(t *testing.T) {
	img, path, _, dest := newTestArchive(t)
	l := img.Layers[1]
	wrong := bytes.Clone(l.Data)
	wrong[len(wrong)-1] ^= 1
	_, err := dest.PutBlob(context.Background(), bytes.NewReader(wrong), types.BlobInfo{Digest: l.Digest, Size: int64(len(l.Data))}, types.PutBlobOptions{})
	if !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("want ErrDigestMismatch, got %v", err)
	}
	// copy.Image adds "writing to docker-archive:..."; the destination must not say it again.
	if strings.Contains(err.Error(), "writing to") {
		t.Errorf("error %q repeats copy's wrap", err)
	}
	other := digest.FromString("other")
	if _, err := dest.PutBlob(context.Background(), strings.NewReader("x"), types.BlobInfo{Digest: other, Size: -1}, types.PutBlobOptions{}); !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("want ErrDigestMismatch, got %v", err)
	}
	putBlobs(t, dest, img)
	if err := dest.PutManifest(context.Background(), img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	names, _, _ := tarMembers(t, path)
	count := 0
	for _, n := range names {
		if n == "blobs/sha256/"+l.Digest.Encoded() {
			count++
		}
		if strings.Contains(n, other.Encoded()) || strings.HasPrefix(n, ".imgcopy-discarded-") {
			t.Errorf("failed blob left a member %s (the last member is cut off, not discarded)", n)
		}
	}
	if count != 1 {
		t.Errorf("layer stored %d times", count)
	}
	src, err := openSource(t, path, nil, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range img.Blobs() {
		readBlob(t, src, types.BlobInfo{Digest: b.Digest})
	}
}

func TestPutManifestRejectsTypes(t *testing.T) {
	cases := []struct {
		name     string
		classic  bool
		mimeType string
	}{
		{name: "schema1 by default", mimeType: manifest.DockerV2Schema1SignedMediaType},
		{name: "OCI in classic", classic: true, mimeType: imgspecv1.MediaTypeImageManifest},
		{name: "index in classic", classic: true, mimeType: imgspecv1.MediaTypeImageIndex},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter(context.Background(), filepath.Join(t.TempDir(), "x.tar"), WriterOptions{Classic: tc.classic})
			if err != nil {
				t.Fatal(err)
			}
			dest := NewDestination(w, true, fakeRef{}, nil, nil)
			defer dest.Close()
			var rej types.ManifestTypeRejectedError
			if err := dest.PutManifest(context.Background(), []byte("{}"), tc.mimeType, nil); !errors.As(err, &rej) {
				t.Errorf("want ManifestTypeRejectedError, got %v", err)
			}
		})
	}
}

// stubCache knows one compressed→uncompressed pair.
type stubCache struct {
	types.BlobInfoCache
	compressed, uncompressed digest.Digest
}

var _ types.BlobInfoCache = stubCache{}

func (c stubCache) UncompressedDigest(d digest.Digest) digest.Digest {
	if d == c.compressed {
		return c.uncompressed
	}
	return ""
}

// TestClassicReusesUncompressedLayer checks that a classic archive substitutes a compressed
// layer by its uncompressed form already stored (a layer shared by two images).
func TestClassicReusesUncompressedLayer(t *testing.T) {
	plain := buildImage(t, conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType, Uncompressed: true, Layers: 1})
	gz := buildImage(t, conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType, Layers: 1})
	w, err := NewWriter(context.Background(), filepath.Join(t.TempDir(), "x.tar"), WriterOptions{Classic: true})
	if err != nil {
		t.Fatal(err)
	}
	dest := NewDestination(w, true, fakeRef{}, nil, nil)
	defer dest.Close()
	putBlobs(t, dest, plain)
	cache := stubCache{compressed: gz.Layers[0].Digest, uncompressed: plain.Layers[0].Digest}
	info := types.BlobInfo{Digest: gz.Layers[0].Digest, Size: int64(len(gz.Layers[0].Data)), MediaType: gz.Layers[0].MediaType}
	for _, tc := range []struct {
		name string
		opts types.ReuseOptions
		want bool
	}{
		{name: "without substitution", opts: types.ReuseOptions{Cache: cache}},
		{name: "without cache", opts: types.ReuseOptions{CanSubstitute: true}},
		{name: "substituted", opts: types.ReuseOptions{Cache: cache, CanSubstitute: true}, want: true},
	} {
		reused, ok, err := dest.TryReusingBlob(context.Background(), info, tc.opts)
		if err != nil || ok != tc.want {
			t.Errorf("%s: reused %v (%v), want %v", tc.name, ok, err, tc.want)
		}
		if ok && (reused.Info.Digest != plain.Layers[0].Digest || reused.Info.MediaType != manifest.DockerV2SchemaLayerMediaTypeUncompressed) {
			t.Errorf("%s: reused as %+v", tc.name, reused.Info)
		}
	}
}
