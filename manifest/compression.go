package manifest

import (
	"fmt"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// Compression names returned by LayerCompression.
const (
	compressionGzip    = "gzip"
	compressionZstd    = "zstd"
	compressionNone    = ""
	compressionUnknown = "unknown"
)

// layerKind is what a layer media type says about its blob.
type layerKind struct {
	compression string
	foreign     bool
}

// layerKinds lists the image layer media types of both formats. Other types (artifact
// blobs, plugin layers) are "unknown" and never recompressed.
var layerKinds = map[string]layerKind{
	DockerV2Schema2LayerMediaType:                     {compressionGzip, false},
	DockerV2SchemaLayerMediaTypeUncompressed:          {compressionNone, false},
	DockerV2Schema2ForeignLayerMediaTypeGzip:          {compressionGzip, true},
	DockerV2Schema2ForeignLayerMediaType:              {compressionNone, true},
	imgspecv1.MediaTypeImageLayerGzip:                 {compressionGzip, false},
	imgspecv1.MediaTypeImageLayerZstd:                 {compressionZstd, false},
	imgspecv1.MediaTypeImageLayer:                     {compressionNone, false},
	imgspecv1.MediaTypeImageLayerNonDistributableGzip: {compressionGzip, true}, //nolint:staticcheck // must still be read
	imgspecv1.MediaTypeImageLayerNonDistributableZstd: {compressionZstd, true}, //nolint:staticcheck // must still be read
	imgspecv1.MediaTypeImageLayerNonDistributable:     {compressionNone, true}, //nolint:staticcheck // must still be read
}

// LayerCompression reports the compression implied by a layer media type: "gzip", "zstd",
// "" (none), or "unknown" for media types that are not image layers.
func LayerCompression(mediaType string) string {
	if k, ok := layerKinds[mediaType]; ok {
		return k.compression
	}
	return compressionUnknown
}

// imageConfigRootFS is the part of a Docker or OCI image config ConfigDiffIDs reads.
type imageConfigRootFS struct {
	RootFS *struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	} `json:"rootfs"`
}

// ConfigDiffIDs extracts rootfs.diff_ids from an image config (Docker or OCI). Configs over
// iolimits.MaxConfigBodySize fail with iolimits.ErrTooLarge, malformed ones with
// ErrInvalidManifest (both wrapped).
func ConfigDiffIDs(config []byte) ([]digest.Digest, error) {
	if len(config) > iolimits.MaxConfigBodySize {
		return nil, errors.Wrapf(iolimits.ErrTooLarge, "image config of %d bytes, limit %d",
			len(config), iolimits.MaxConfigBodySize)
	}
	var c imageConfigRootFS
	if err := unmarshalStrict(config, &c, "image config"); err != nil {
		return nil, err
	}
	if c.RootFS == nil {
		return nil, errors.Wrap(ErrInvalidManifest, "image config has no rootfs")
	}
	if c.RootFS.Type != "layers" {
		return nil, errors.Wrapf(ErrInvalidManifest, "image config rootfs type %q, expected \"layers\"", c.RootFS.Type)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, errors.Wrapf(ErrInvalidManifest, "image config diff_ids[%d] %q: %v", i, d, err)
		}
	}
	if c.RootFS.DiffIDs == nil {
		return []digest.Digest{}, nil
	}
	return c.RootFS.DiffIDs, nil
}

// CheckContainerImage returns nil when m is a container image a runtime can load (`docker
// load`): its config is a Docker or OCI image config and every layer is a tar layer, plain or
// compressed. Otherwise (a Helm chart, a WASM module, a signature or an attestation: any
// artifact) it returns an error naming what is not image-like. Schema1 has no config and
// passes on its layers alone.
func CheckContainerImage(m Manifest) error {
	config := m.ConfigInfo()
	if config.Digest != "" && config.MediaType != DockerV2Schema2ConfigMediaType && config.MediaType != imgspecv1.MediaTypeImageConfig {
		return errors.Errorf("its config is %q, not a container image config", config.MediaType)
	}
	for i, l := range m.LayerInfos() {
		if _, ok := layerKinds[l.MediaType]; !ok {
			return errors.Errorf("%s is %q, not a tar layer", layerName(i), l.MediaType)
		}
	}
	return nil
}

// RefuseArtifact returns nil when m is a container image (CheckContainerImage), else a
// UsageError matching types.ErrNotContainerImage that says store ("a docker-archive") holds
// only container images and where the artifact can go instead.
func RefuseArtifact(m Manifest, store string) error {
	err := CheckContainerImage(m)
	if err == nil {
		return nil
	}
	return types.UsageError{Err: notContainerImage(fmt.Sprintf("%s holds only container images, and this manifest is an artifact (%v): "+
		"copy it to an oci:, oci-archive:, dir: or docker:// destination", store, err))}
}

// notContainerImage is RefuseArtifact's message; it matches types.ErrNotContainerImage.
type notContainerImage string

func (e notContainerImage) Error() string { return string(e) }

// Is makes errors.Is(err, types.ErrNotContainerImage) true.
func (e notContainerImage) Is(target error) bool { return target == types.ErrNotContainerImage }
