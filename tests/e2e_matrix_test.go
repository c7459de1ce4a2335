package tests

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// TestE2EMatrix copies a single-platform image and a two-platform index (OCI, and a Docker
// manifest list) from every transport
// to every transport with default options, then reads each copy back through its
// ImageSource: every blob must match its descriptor and every layer its diff_id, and no
// path converts anything, so the manifest digest is preserved — except that a docker-archive
// destination, which prefers a single platform, gets the running platform's image of an index.
func TestE2EMatrix(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	variants := []struct {
		name string
		opts fixtures.Options
	}{
		{"single", fixtures.Options{}},
		{"multi", fixtures.Options{Platforms: e2ePlatforms()}},
		{"multi-docker", fixtures.Options{Platforms: e2ePlatforms(), DockerMediaTypes: true}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			l, origin := e2eFixture(t, v.opts)
			for _, srcKind := range e2eKinds {
				t.Run("from-"+srcKind, func(t *testing.T) {
					t.Parallel()
					base := t.TempDir()
					src := e2eLocation(t, srcKind, base, reg.Host, v.name+"-src-"+srcKind)
					// MultiArchAll keeps the index also in a docker-archive source.
					e2eCopy(t, src, origin, &copier.Options{MultiArch: copier.MultiArchAll})
					for _, destKind := range e2eKinds {
						t.Run("to-"+destKind, func(t *testing.T) {
							t.Parallel()
							dest := e2eLocation(t, destKind, t.TempDir(), reg.Host, v.name+"-"+srcKind+"-to-"+destKind)
							res := e2eCopy(t, dest, src, nil)
							e2eCheckMatrixCopy(t, l, destKind, res, e2eVerify(t, dest, nil))
						})
					}
				})
			}
		})
	}
}

// e2eCheckMatrixCopy checks a default-options copy of fixture l into a destination of destKind.
func e2eCheckMatrixCopy(t *testing.T, l *fixtures.Layout, destKind string, res *copier.Result, rb e2eReadBack) {
	t.Helper()
	multi := len(l.Images) > 1
	if multi && destKind == "docker-archive" {
		// docker-archive prefers a single platform: the default picks the running one, unchanged.
		want := e2eFixtureImage(t, l, e2ePlatformString(manifest.SystemPlatform(nil)))
		if manifest.IsIndexType(rb.TopMIME) || rb.TopDigest != want.ManifestDigest || res.ManifestDigest != want.ManifestDigest ||
			len(res.Instances) != 1 || res.DigestChanged {
			t.Fatalf("multi-platform into docker-archive: read back %s %s, result %s (%d instances, changed %v); want the %s image %s",
				rb.TopMIME, rb.TopDigest, res.ManifestDigest, len(res.Instances), res.DigestChanged, e2ePlatformString(want.Platform), want.ManifestDigest)
		}
		e2eCheckSameImage(t, want, rb.Images[0])
		return
	}
	if rb.TopDigest != l.ManifestDigest || res.ManifestDigest != l.ManifestDigest || res.DigestChanged || !bytes.Equal(rb.Top, l.Manifest) {
		t.Fatalf("digest not preserved: read back %s, result %s (changed %v), want %s", rb.TopDigest, res.ManifestDigest, res.DigestChanged, l.ManifestDigest)
	}
	if len(rb.Images) != len(l.Images) {
		t.Fatalf("read back %d images, want %d", len(rb.Images), len(l.Images))
	}
	for i := range l.Images {
		e2eCheckSameImage(t, l.Images[i], rb.Images[i])
	}
	if multi && len(res.Instances) != len(l.Images) {
		t.Errorf("result lists %d instances, want %d", len(res.Instances), len(l.Images))
	}
}

// e2eCheckSameImage checks that an image read back is the fixture image, byte for byte.
func e2eCheckSameImage(t *testing.T, want fixtures.Image, got e2eImage) {
	t.Helper()
	var wantLayers []string
	for _, b := range want.Layers {
		wantLayers = append(wantLayers, b.Digest.String())
	}
	var gotLayers []string
	for _, d := range e2eLayerDigests(got.Manifest) {
		gotLayers = append(gotLayers, d.String())
	}
	if got.Digest != want.ManifestDigest || got.Manifest.ConfigInfo().Digest != want.ConfigDigest ||
		!slices.Equal(gotLayers, wantLayers) || !slices.Equal(got.DiffIDs, want.DiffIDs) {
		t.Errorf("image %s (config %s, layers %v) differs from the fixture's %s (config %s, layers %v)",
			got.Digest, got.Manifest.ConfigInfo().Digest, gotLayers, want.ManifestDigest, want.ConfigDigest, wantLayers)
	}
}

func e2ePlatformString(p types.Platform) string {
	return p.OS + "/" + p.Architecture
}

// TestE2EManifestConversion converts schema2 to OCI and back (ForceManifestMIMEType) and
// into a classic docker-archive (uncompressed layers): the manifest digest changes, the
// config bytes and digest do not, and every layer still matches its diff_id.
func TestE2EManifestConversion(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	l, origin := e2eFixture(t, fixtures.Options{DockerMediaTypes: true})
	want := l.Images[0]
	base := t.TempDir()

	toOCI := e2eLocation(t, "oci", base, reg.Host, "as-oci")
	res := e2eCopy(t, toOCI, origin, &copier.Options{ForceManifestMIMEType: imgspecv1.MediaTypeImageManifest})
	oci := e2eVerify(t, toOCI, nil)
	e2eCheckConverted(t, "schema2 to OCI", want, res, oci, imgspecv1.MediaTypeImageManifest)
	if !slices.Equal(e2eLayerDigests(oci.Images[0].Manifest), e2eLayerDigests(e2eParse(t, want.Manifest))) {
		t.Errorf("schema2 to OCI changed the (gzip) layer digests")
	}

	toS2 := e2eLocation(t, "registry", base, reg.Host, "back-to-schema2")
	res = e2eCopy(t, toS2, toOCI, &copier.Options{ForceManifestMIMEType: manifest.DockerV2Schema2MediaType})
	s2 := e2eVerify(t, toS2, nil)
	// The manifest need not serialize like the fixture's, but config and layers are the original ones.
	if s2.TopMIME != manifest.DockerV2Schema2MediaType || s2.TopDigest != res.ManifestDigest || !res.DigestChanged {
		t.Errorf("OCI back to schema2: wrote %s %s (result %s, changed %v)", s2.TopMIME, s2.TopDigest, res.ManifestDigest, res.DigestChanged)
	}
	e2eCheckSameImage(t, fixtures.Image{ManifestDigest: s2.TopDigest, ConfigDigest: want.ConfigDigest, Layers: want.Layers, DiffIDs: want.DiffIDs}, s2.Images[0])

	classic := e2eLocation(t, "docker-archive", base, reg.Host, "classic")
	res = e2eCopy(t, classic, toOCI, &copier.Options{DestinationCtx: &types.SystemContext{DockerArchiveClassic: true}})
	ca := e2eVerify(t, classic, nil)
	e2eCheckConverted(t, "OCI to classic docker-archive", want, res, ca, manifest.DockerV2Schema2MediaType)
	if got := e2eLayerDigests(ca.Images[0].Manifest); !slices.Equal(got, want.DiffIDs) {
		t.Errorf("classic docker-archive layers %v, want the uncompressed diff IDs %v", got, want.DiffIDs)
	}
}

// e2eCheckConverted checks a converted copy: new manifest type and digest, same config.
func e2eCheckConverted(t *testing.T, what string, want fixtures.Image, res *copier.Result, rb e2eReadBack, mime string) {
	t.Helper()
	img := rb.Images[0]
	if rb.TopMIME != mime || res.MIMEType != mime || rb.TopDigest == want.ManifestDigest || rb.TopDigest != res.ManifestDigest || !res.DigestChanged {
		t.Errorf("%s: wrote %s %s (result %s %s, changed %v)", what, rb.TopMIME, rb.TopDigest, res.MIMEType, res.ManifestDigest, res.DigestChanged)
	}
	if img.Manifest.ConfigInfo().Digest != want.ConfigDigest || !bytes.Equal(img.Config, want.Config) {
		t.Errorf("%s: config %s, want %s unchanged", what, img.Manifest.ConfigInfo().Digest, want.ConfigDigest)
	}
	if !slices.Equal(img.DiffIDs, want.DiffIDs) {
		t.Errorf("%s: diff IDs %v, want %v", what, img.DiffIDs, want.DiffIDs)
	}
}

func e2eParse(t *testing.T, b []byte) manifest.Manifest {
	t.Helper()
	m, err := manifest.FromBlob(b, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestE2EChain copies dir → oci → docker-archive → registry → dir and keeps the digest on
// every step; the last directory holds the original manifest bytes.
func TestE2EChain(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	l, origin := e2eFixture(t, fixtures.Options{})
	base := t.TempDir()
	first := e2eLocation(t, "dir", base, reg.Host, "first")
	e2eCopy(t, first, origin, nil)
	prev := first
	for _, kind := range []string{"oci", "docker-archive", "registry", "dir"} {
		next := e2eLocation(t, kind, base, reg.Host, "chain-"+kind)
		res := e2eCopy(t, next, prev, nil)
		if res.ManifestDigest != l.ManifestDigest || res.DigestChanged {
			t.Fatalf("%s → %s: digest %s (changed %v), want %s", types.ImageName(prev), types.ImageName(next), res.ManifestDigest, res.DigestChanged, l.ManifestDigest)
		}
		prev = next
	}
	rb := e2eVerify(t, prev, nil)
	if !bytes.Equal(rb.Top, l.Manifest) {
		t.Errorf("end of the chain holds manifest %s, want %s", rb.TopDigest, l.ManifestDigest)
	}
	e2eCheckSameImage(t, l.Images[0], rb.Images[0])
}

// TestE2EDockerArchivePrefersSinglePlatform pins the property behind the matrix's
// docker-archive expectation: like `docker save`, the destination asks for the running
// platform's image by default, but it can hold a whole index when asked (MultiArchAll).
func TestE2EDockerArchivePrefersSinglePlatform(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{Platforms: e2ePlatforms()})
	ref := e2eRef(t, "docker-archive:"+filepath.Join(t.TempDir(), "all.tar")+":e2e/all:v1")
	dest, err := ref.NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	props := dest.Properties()
	if err := dest.Close(); err != nil {
		t.Fatal(err)
	}
	if !props.PrefersSinglePlatform || !props.AcceptsIndex {
		t.Fatalf("docker-archive destination properties %+v, want PrefersSinglePlatform and AcceptsIndex", props)
	}
	res := e2eCopy(t, ref, origin, &copier.Options{MultiArch: copier.MultiArchAll})
	if res.ManifestDigest != l.ManifestDigest || len(res.Instances) != 2 {
		t.Errorf("MultiArchAll into docker-archive wrote %s with %d instances, want the index %s", res.ManifestDigest, len(res.Instances), l.ManifestDigest)
	}
	e2eCheckMatrixCopy(t, l, "oci", res, e2eVerify(t, ref, nil)) // "oci": expect the whole index
}
