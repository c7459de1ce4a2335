package conformance

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
)

// TestBuildImage checks that the suite's images are valid and deterministic.
func TestBuildImage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts ImageOptions
	}{
		{"oci", ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest}},
		{"schema2", ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType, Architecture: "arm64"}},
		{"uncompressed", ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Uncompressed: true, Layers: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := BuildImage(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := BuildImage(tc.opts)
			if !bytes.Equal(img.Manifest, again.Manifest) {
				t.Error("BuildImage is not deterministic")
			}
			m, err := manifest.FromBlob(img.Manifest, img.MIMEType)
			if err != nil {
				t.Fatalf("manifest does not parse: %v", err)
			}
			if m.ConfigInfo().Digest != img.Config.Digest || len(m.LayerInfos()) != len(img.Layers) {
				t.Errorf("manifest does not describe the image")
			}
			diffIDs, err := manifest.ConfigDiffIDs(img.Config.Data)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range img.Layers {
				var r io.Reader = bytes.NewReader(l.Data)
				if manifest.LayerCompression(l.MediaType) == "gzip" {
					if r, err = gzip.NewReader(r); err != nil {
						t.Fatal(err)
					}
				}
				tarData, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if digest.FromBytes(tarData) != diffIDs[i] {
					t.Errorf("layer %d: diff_id mismatch", i)
				}
			}
		})
	}
	idx, err := BuildIndex(imgspecv1.MediaTypeImageIndex, false)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := manifest.IndexFromBlob(idx.Manifest, idx.MIMEType)
	if err != nil || len(parsed.Instances()) != 2 {
		t.Fatalf("index: %v", err)
	}
}
