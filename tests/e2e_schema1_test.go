package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// e2eSchema1Source serves a signed schema1 image from a static registry (distribution v3
// no longer accepts schema1) and returns it with a reference to it.
func e2eSchema1Source(t testing.TB) (*fixtures.Schema1Image, types.ImageReference) {
	t.Helper()
	img, err := fixtures.BuildSchema1("legacy/app", "v1", false)
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[digest.Digest][]byte{}
	for _, l := range img.Layers {
		blobs[l.Digest] = l.Data
	}
	reg := testregistry.StartStatic(t, testregistry.StaticImage{
		Repo: "legacy/app", Tag: "v1", Manifest: img.Manifest, MIMEType: img.MIMEType, Digest: img.Digest, Blobs: blobs,
	})
	return img, e2eRef(t, "docker://"+reg.Host+"/legacy/app:v1")
}

// TestE2ESchema1Destinations copies a signed schema1 image from a registry to every kind of
// destination: OCI layouts and archives get an OCI image, a docker-archive a schema2 one
// (both with the original layers, their diff IDs and a config built from the history),
// dir: keeps the schema1 bytes, and a registry that refuses schema1 (distribution v3) gets
// the image converted to schema2, the Docker family's successor, as skopeo converts it.
func TestE2ESchema1Destinations(t *testing.T) {
	t.Parallel()
	img, src := e2eSchema1Source(t)
	reg := testregistry.Start(t, testregistry.Options{})
	cases := []struct {
		kind     string
		wantType string
	}{
		{"oci", imgspecv1.MediaTypeImageManifest},
		{"oci-archive", imgspecv1.MediaTypeImageManifest},
		{"docker-archive", manifest.DockerV2Schema2MediaType},
		{"dir", manifest.DockerV2Schema1SignedMediaType},
		{"registry", manifest.DockerV2Schema2MediaType}, // skopeo's choice too
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			dest := e2eLocation(t, tc.kind, t.TempDir(), reg.Host, "schema1-"+tc.kind)
			res := e2eCopy(t, dest, src, nil)
			if res.MIMEType != tc.wantType {
				t.Fatalf("wrote %s, want %s", res.MIMEType, tc.wantType)
			}
			rb := e2eReadSchema1Result(t, dest)
			if tc.kind == "dir" {
				if !bytes.Equal(rb.Top, img.Manifest) || res.ManifestDigest != img.Digest || res.DigestChanged {
					t.Errorf("dir: schema1 not kept byte for byte (digest %s, want %s)", res.ManifestDigest, img.Digest)
				}
				return
			}
			e2eCheckSchema1Conversion(t, img, rb)
		})
	}
}

// e2eReadSchema1Result reads a copied image back; schema1 (which has no config) is only
// read, the rest fully verified (digests, sizes, diff IDs against the config).
func e2eReadSchema1Result(t *testing.T, ref types.ImageReference) e2eReadBack {
	t.Helper()
	src, err := ref.NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	top, mime, err := src.GetManifest(context.Background(), nil)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	if mime == manifest.DockerV2Schema1SignedMediaType || manifest.GuessMIMEType(top) == manifest.DockerV2Schema1SignedMediaType {
		return e2eReadBack{Top: top, TopMIME: mime}
	}
	return e2eVerify(t, ref, nil)
}

// e2eCheckSchema1Conversion checks a converted schema1 image: the non-empty layers kept
// byte for byte, and a config equivalent to skopeo's conversion.
func e2eCheckSchema1Conversion(t *testing.T, img *fixtures.Schema1Image, rb e2eReadBack) {
	t.Helper()
	got := rb.Images[0]
	want := []digest.Digest{img.Layers[0].Digest, img.Layers[2].Digest} // the throwaway layer is dropped
	if ds := e2eLayerDigests(got.Manifest); !slices.Equal(ds, want) {
		t.Errorf("layers %v, want %v", ds, want)
	}
	if !slices.Equal(got.DiffIDs, img.DiffIDs) {
		t.Errorf("diff IDs %v, want %v", got.DiffIDs, img.DiffIDs)
	}
	var cfg struct {
		Created      time.Time `json:"created"`
		Author       string    `json:"author"`
		Architecture string    `json:"architecture"`
		OS           string    `json:"os"`
		Config       struct {
			Cmd, Env []string
		} `json:"config"`
		History []struct {
			Created    time.Time `json:"created"`
			CreatedBy  string    `json:"created_by"`
			EmptyLayer bool      `json:"empty_layer"`
		} `json:"history"`
	}
	if err := json.Unmarshal(got.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" || cfg.Author != "imgcopy fixtures" || cfg.Created.IsZero() ||
		!slices.Equal(cfg.Config.Cmd, img.Cmd) || !slices.Equal(cfg.Config.Env, img.Env) {
		t.Errorf("config %s does not carry the newest history entry's settings", got.Config)
	}
	if len(cfg.History) != 3 || cfg.History[0].EmptyLayer || !cfg.History[1].EmptyLayer || cfg.History[2].EmptyLayer ||
		!strings.Contains(cfg.History[1].CreatedBy, "ENV GREETING=schema1") || !cfg.History[0].Created.Before(cfg.History[2].Created) {
		t.Errorf("history %+v: want 3 entries, oldest first, the ENV one empty", cfg.History)
	}
}

// TestE2ESchema1PreserveDigests: schema1 cannot be kept in an OCI layout, so preserving the
// digest there is refused with the reason; into dir: it is kept.
func TestE2ESchema1PreserveDigests(t *testing.T) {
	t.Parallel()
	img, src := e2eSchema1Source(t)
	dir := t.TempDir()
	_, err := copier.Image(context.Background(), e2eRef(t, "oci:"+dir+"/layout:v1"), src, &copier.Options{PreserveDigests: true})
	if !errors.Is(err, types.ErrUsage) || !strings.Contains(err.Error(), "no image config") || !strings.Contains(err.Error(), "--format") {
		t.Errorf("copy to an OCI layout with --preserve-digests: %v; want a usage error saying why and naming --format", err)
	}
	res := e2eCopy(t, e2eRef(t, "dir:"+dir+"/dir"), src, &copier.Options{PreserveDigests: true})
	if res.ManifestDigest != img.Digest {
		t.Errorf("dir: wrote %s, want %s", res.ManifestDigest, img.Digest)
	}
}
