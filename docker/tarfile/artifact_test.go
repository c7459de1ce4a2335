package tarfile

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	dref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// artifactManifest returns an OCI manifest with this config and layer media types.
func artifactManifest(t *testing.T, configType string, layerTypes ...string) []byte {
	t.Helper()
	m := imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: configType, Digest: digest.FromString("config"), Size: 6}, Layers: []imgspecv1.Descriptor{}}
	for i, lt := range layerTypes {
		m.Layers = append(m.Layers, imgspecv1.Descriptor{MediaType: lt, Digest: digest.FromString(lt), Size: int64(i + 1)})
	}
	return mustJSON(t, m)
}

// TestPutManifestRefusesArtifacts: `docker load` cannot load an artifact, so writing one as
// the image of a docker-archive is a usage error, not an archive that fails to load later.
func TestPutManifestRefusesArtifacts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body []byte
		ok   bool
	}{
		{name: "helm chart", body: artifactManifest(t, "application/vnd.cncf.helm.config.v1+json", "application/vnd.cncf.helm.chart.content.v1.tar+gzip")},
		{name: "empty config", body: artifactManifest(t, imgspecv1.MediaTypeEmptyJSON, "application/octet-stream")},
		{name: "wasm", body: artifactManifest(t, "application/vnd.wasm.config.v0+json", "application/wasm")},
		{name: "signature", body: artifactManifest(t, imgspecv1.MediaTypeImageConfig, "application/vnd.dev.cosign.simplesigning.v1+json")},
		{name: "attestation", body: artifactManifest(t, imgspecv1.MediaTypeImageConfig, "application/vnd.in-toto+json")},
		{name: "image", body: artifactManifest(t, imgspecv1.MediaTypeImageConfig, imgspecv1.MediaTypeImageLayerGzip, imgspecv1.MediaTypeImageLayerZstd, imgspecv1.MediaTypeImageLayer), ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, err := NewWriter(context.Background(), filepath.Join(t.TempDir(), "x.tar"), WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			dest := NewDestination(w, true, fakeRef{}, nil, nil)
			defer dest.Close()
			err = dest.PutManifest(context.Background(), tc.body, imgspecv1.MediaTypeImageManifest, nil)
			if tc.ok != (err == nil) || (err != nil && types.Classify(err) != types.ClassUsage) {
				t.Errorf("PutManifest = %v (class %v); want refused as a usage error: %t", err, types.Classify(err), !tc.ok)
			}
		})
	}
}

// TestCommitNeverListsAnAttestation: when no image of the running platform was written, the
// image manifest.json lists instead is a container image, never buildx's attestation
// manifest listed first in the index.
func TestCommitNeverListsAnAttestation(t *testing.T) {
	t.Parallel()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1"}`)
	att := mustJSON(t, imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: img.Config.Digest, Size: int64(len(img.Config.Data))},
		Layers: []imgspecv1.Descriptor{{MediaType: "application/vnd.in-toto+json", Digest: digest.FromBytes(statement), Size: int64(len(statement))}}})
	attDigest := digest.FromBytes(att)
	idx := mustJSON(t, imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{
			{MediaType: imgspecv1.MediaTypeImageManifest, Digest: attDigest, Size: int64(len(att)),
				Platform:    &imgspecv1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": img.Digest.String()}},
			{MediaType: imgspecv1.MediaTypeImageManifest, Digest: img.Digest, Size: int64(len(img.Manifest)), Platform: &img.Platform},
		}})

	path := filepath.Join(t.TempDir(), "out.tar")
	w, err := NewWriter(context.Background(), path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dest := NewDestination(w, true, fakeRef{}, []dref.NamedTagged{tagged(t, "multi:v1")}, &types.SystemContext{OSChoice: "linux", ArchitectureChoice: "s390x"})
	defer dest.Close()
	putBlobs(t, dest, img)
	if _, err := dest.PutBlob(context.Background(), bytes.NewReader(statement), types.BlobInfo{Digest: digest.FromBytes(statement), Size: int64(len(statement))}, types.PutBlobOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		body []byte
		d    digest.Digest
	}{{att, attDigest}, {img.Manifest, img.Digest}} {
		if err := dest.PutManifest(context.Background(), m.body, imgspecv1.MediaTypeImageManifest, &m.d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(context.Background(), idx, imgspecv1.MediaTypeImageIndex, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, files := tarMembers(t, path)
	var items []ManifestItem
	if err := json.Unmarshal(files["manifest.json"], &items); err != nil {
		t.Fatal(errors.Wrap(err, "parsing manifest.json"))
	}
	if len(items) != 1 || len(items[0].Layers) != len(img.Layers) || items[0].Layers[0] != "blobs/sha256/"+img.Layers[0].Digest.Encoded() {
		t.Errorf("manifest.json does not list the arm64 image: %s", files["manifest.json"])
	}
}
