package copy

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestOnlyContainerImagesRefusesArtifactFirst: a destination that holds only container images
// (a docker-archive) gets no blob of an artifact: the copy refuses it from the manifest, as a
// usage error matching ErrNotContainerImage, while an image copies as before.
func TestOnlyContainerImagesRefusesArtifactFirst(t *testing.T) {
	t.Parallel()
	payload := []byte(`{"critical":{"identity":{"docker-reference":"x"}}}`)
	for _, tc := range []struct {
		name       string
		configType string
		layerType  string
		refused    bool
	}{
		{"cosign signature", "application/vnd.oci.empty.v1+json", "application/vnd.dev.cosign.simplesigning.v1+json", true},
		{"helm chart", "application/vnd.cncf.helm.config.v1+json", "application/vnd.cncf.helm.chart.content.v1.tar+gzip", true},
		{"image", imgspecv1.MediaTypeImageConfig, imgspecv1.MediaTypeImageLayerGzip, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newMemStore()
			config := []byte(`{}`)
			layer := payload
			if !tc.refused {
				l := makeLayer(t, 1, 100, "gzip")
				layer, config = l.blob, makeConfig(t, "amd64", []testLayer{l})
			}
			s.putBlob(config)
			s.putBlob(layer)
			m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": imgspecv1.MediaTypeImageManifest,
				"config": map[string]any{"mediaType": tc.configType, "size": len(config), "digest": digest.FromBytes(config)},
				"layers": []map[string]any{{"mediaType": tc.layerType, "size": len(layer), "digest": digest.FromBytes(layer)}}})
			s.setTop(m, imgspecv1.MediaTypeImageManifest)
			src := newFakeRef("src", s)
			dest := newFakeRef("dest", newMemStore())
			dest.dest.props.OnlyContainerImages = true
			_, err := copyImage(t, dest, src, nil)
			if !tc.refused {
				if err != nil {
					t.Fatalf("copying an image: %v", err)
				}
				return
			}
			if !errors.Is(err, types.ErrNotContainerImage) || types.Classify(err) != types.ClassUsage {
				t.Fatalf("got %v (class %v), want ErrNotContainerImage as a usage error", err, types.Classify(err))
			}
			if n := dest.lastDest().totalPutBlobs(); n != 0 {
				t.Fatalf("%d blob(s) written before the artifact was refused", n)
			}
		})
	}
}
