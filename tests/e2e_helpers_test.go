package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/dir"
	"github.com/imgcopy/imgcopy/docker"
	dockerarchive "github.com/imgcopy/imgcopy/docker/archive"
	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
	ociarchive "github.com/imgcopy/imgcopy/oci/archive"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// e2eTransports is the transport list of the library end-to-end tests, built like the CLI's.
var e2eTransports = func() types.TransportList {
	l, err := types.NewTransportList(docker.Transport, dockerarchive.Transport, layout.Transport, ociarchive.Transport, dir.Transport)
	if err != nil {
		panic(err)
	}
	return l
}()

// e2eKinds are the transports of the round-trip matrix; "registry" is docker:// against an
// in-process registry.
var e2eKinds = []string{"registry", "docker-archive", "oci", "oci-archive", "dir"}

// e2eRef parses a transport-qualified image name with e2eTransports.
func e2eRef(t testing.TB, name string) types.ImageReference {
	t.Helper()
	ref, err := e2eTransports.ParseImageName(name)
	if err != nil {
		t.Fatalf("parsing %q: %v", name, err)
	}
	return ref
}

// e2eLocation returns a fresh image location of transport kind: a path under base, or a
// repository named after name in the registry at host.
func e2eLocation(t testing.TB, kind, base, host, name string) types.ImageReference {
	t.Helper()
	p := filepath.Join(base, name)
	switch kind {
	case "registry":
		return e2eRef(t, "docker://"+host+"/e2e/"+name+":v1")
	case "docker-archive":
		return e2eRef(t, "docker-archive:"+p+".tar:e2e/"+name+":v1")
	case "oci":
		return e2eRef(t, "oci:"+p+":v1")
	case "oci-archive":
		return e2eRef(t, "oci-archive:"+p+".tar:v1")
	case "dir":
		return e2eRef(t, "dir:"+p)
	}
	t.Fatalf("unknown transport kind %q", kind)
	return nil
}

// e2eFixture writes a generated OCI layout under t.TempDir() and returns it with a reference to it.
func e2eFixture(t testing.TB, opts fixtures.Options) (*fixtures.Layout, types.ImageReference) {
	t.Helper()
	l, err := fixtures.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "fixture")
	if err := l.Write(p); err != nil {
		t.Fatal(err)
	}
	return l, e2eRef(t, "oci:"+p+":"+l.RefName)
}

// e2ePlatforms are the platforms of the multi-arch fixture: the running one (so that the
// docker-archive default picks it) and another one.
func e2ePlatforms() []string {
	other := "linux/arm64"
	if runtime.GOARCH == "arm64" {
		other = "linux/amd64"
	}
	return []string{"linux/" + runtime.GOARCH, other}
}

// e2eCopy copies src to dest and fails the test on an error.
func e2eCopy(t testing.TB, dest, src types.ImageReference, opts *copier.Options) *copier.Result {
	t.Helper()
	res, err := copier.Image(context.Background(), dest, src, opts)
	if err != nil {
		t.Fatalf("copying %s to %s: %v", types.ImageName(src), types.ImageName(dest), err)
	}
	return res
}

// e2eImage is what e2eReadBack found for one single-platform image.
type e2eImage struct {
	Digest   digest.Digest
	MIMEType string
	Manifest manifest.Manifest
	Config   []byte
	DiffIDs  []digest.Digest // from the config
}

// e2eReadBack is an image read back through a reference's ImageSource.
type e2eReadBack struct {
	TopDigest digest.Digest
	TopMIME   string
	Top       []byte
	Images    []e2eImage // one for a single image, else one per index instance in order
}

// e2eVerify opens ref as a source and reads everything: the top-level manifest, every
// instance and every blob. Each blob must match its descriptor's digest and size, and each
// layer, decompressed, must match its diff ID in the config.
func e2eVerify(t testing.TB, ref types.ImageReference, sys *types.SystemContext) e2eReadBack {
	t.Helper()
	ctx := context.Background()
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		t.Fatalf("opening %s: %v", types.ImageName(ref), err)
	}
	defer src.Close()
	top, mime, err := src.GetManifest(ctx, nil)
	if err != nil {
		t.Fatalf("reading manifest of %s: %v", types.ImageName(ref), err)
	}
	rb := e2eReadBack{Top: top, TopMIME: mime, TopDigest: e2eManifestDigest(t, top)}
	if mime == "" {
		rb.TopMIME = manifest.GuessMIMEType(top)
	}
	if !manifest.IsIndexType(rb.TopMIME) {
		rb.Images = []e2eImage{e2eVerifyImage(t, src, top, rb.TopMIME)}
		return rb
	}
	idx, err := manifest.IndexFromBlob(top, rb.TopMIME)
	if err != nil {
		t.Fatalf("parsing index of %s: %v", types.ImageName(ref), err)
	}
	for _, inst := range idx.Instances() {
		d := inst.Digest
		b, m, err := src.GetManifest(ctx, &d)
		if err != nil {
			t.Fatalf("reading instance %s of %s: %v", d, types.ImageName(ref), err)
		}
		if got := e2eManifestDigest(t, b); got != d || int64(len(b)) != inst.Size {
			t.Errorf("%s: instance %s read back as %s (%d bytes, want %d)", types.ImageName(ref), d, got, len(b), inst.Size)
		}
		if m == "" {
			m = inst.MediaType
		}
		rb.Images = append(rb.Images, e2eVerifyImage(t, src, b, m))
	}
	return rb
}

func e2eManifestDigest(t testing.TB, b []byte) digest.Digest {
	t.Helper()
	d, err := manifest.Digest(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// e2eVerifyImage checks every blob of one single-platform image.
func e2eVerifyImage(t testing.TB, src types.ImageSource, b []byte, mime string) e2eImage {
	t.Helper()
	m, err := manifest.FromBlob(b, mime)
	if err != nil {
		t.Fatalf("parsing %s manifest: %v", mime, err)
	}
	img := e2eImage{Digest: e2eManifestDigest(t, b), MIMEType: m.MIMEType(), Manifest: m}
	img.Config = e2eReadBlob(t, src, m.ConfigInfo(), "")
	if img.DiffIDs, err = manifest.ConfigDiffIDs(img.Config); err != nil {
		t.Fatalf("reading diff IDs of config %s: %v", m.ConfigInfo().Digest, err)
	}
	layers := m.LayerInfos()
	if len(layers) != len(img.DiffIDs) {
		t.Fatalf("image %s: %d layers but %d diff IDs", img.Digest, len(layers), len(img.DiffIDs))
	}
	for i, l := range layers {
		got := digest.FromBytes(e2eReadBlob(t, src, l.BlobInfo, manifest.LayerCompression(l.MediaType)))
		if got != img.DiffIDs[i] {
			t.Errorf("image %s layer %s: uncompressed digest %s, config diff_id %s", img.Digest, l.Digest, got, img.DiffIDs[i])
		}
	}
	return img
}

// e2eReadBlob fetches one blob, checks its digest and size, and returns its content
// decompressed as compression ("gzip", "zstd" or "" for none) says.
func e2eReadBlob(t testing.TB, src types.ImageSource, info types.BlobInfo, compression string) []byte {
	t.Helper()
	rc, size, err := src.GetBlob(context.Background(), info, types.GetBlobOptions{})
	if err != nil {
		t.Fatalf("fetching blob %s: %v", info.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading blob %s: %v", info.Digest, err)
	}
	if got := digest.FromBytes(b); got != info.Digest || int64(len(b)) != info.Size || (size != -1 && size != info.Size) {
		t.Errorf("blob %s: read %s, %d bytes (reported size %d), want %d bytes", info.Digest, got, len(b), size, info.Size)
	}
	switch compression {
	case "":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("blob %s: %v", info.Digest, err)
		}
		b, err = iolimits.ReadAtMost(zr, 64<<20)
		if err != nil {
			t.Fatalf("decompressing blob %s: %v", info.Digest, err)
		}
		return b
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("blob %s: %v", info.Digest, err)
		}
		defer zr.Close()
		b, err = iolimits.ReadAtMost(zr, 64<<20)
		if err != nil {
			t.Fatalf("decompressing blob %s: %v", info.Digest, err)
		}
		return b
	}
	t.Fatalf("blob %s: unknown compression %q", info.Digest, compression)
	return nil
}

// e2eLayerDigests lists the layer digests of a manifest.
func e2eLayerDigests(m manifest.Manifest) []digest.Digest {
	var ds []digest.Digest
	for _, l := range m.LayerInfos() {
		ds = append(ds, l.Digest)
	}
	return ds
}

// e2eFixtureImage returns the fixture image for platform p ("os/arch").
func e2eFixtureImage(t testing.TB, l *fixtures.Layout, p string) fixtures.Image {
	t.Helper()
	for _, img := range l.Images {
		if img.Platform.OS+"/"+img.Platform.Architecture == p {
			return img
		}
	}
	t.Fatalf("fixture has no image for %s", p)
	return fixtures.Image{}
}

// e2eJSON renders v for failure messages.
func e2eJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
