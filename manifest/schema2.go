package manifest

import (
	"encoding/json"

	"github.com/imgcopy/imgcopy/types"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
)

// Schema2Descriptor is a blob reference in a Docker schema2 manifest or manifest list.
type Schema2Descriptor struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Digest    digest.Digest `json:"digest"`
	URLs      []string      `json:"urls,omitempty"`
}

// Schema2 is a Docker schema2 manifest
// (https://distribution.github.io/distribution/spec/manifest-v2-2/). A parsed one may lack
// mediaType (old Docker tools wrote none); Serialize of a built one always sets it.
type Schema2 struct {
	SchemaVersion int                 `json:"schemaVersion"`
	MediaType     string              `json:"mediaType"`
	Config        Schema2Descriptor   `json:"config"`
	Layers        []Schema2Descriptor `json:"layers"`

	raw []byte
}

var _ Manifest = (*Schema2)(nil)

func (m *Schema2) rawBytes() []byte  { return m.raw }
func (m *Schema2) setRaw(raw []byte) { m.raw = raw }

// schema2FromBlob parses and validates a Docker schema2 manifest.
func schema2FromBlob(b []byte) (*Schema2, error) {
	if err := checkUnambiguous(b, DockerV2Schema2MediaType, fieldConfig|fieldLayers); err != nil {
		return nil, err
	}
	m := &Schema2{}
	if err := unmarshalStrict(b, m, DockerV2Schema2MediaType); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.raw = b
	return m, nil
}

// validate checks the schema2 rules that a parse cannot.
func (m *Schema2) validate() error {
	if m.SchemaVersion != 2 {
		return errors.Wrapf(ErrInvalidManifest, "schema2 manifest with schemaVersion %d", m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != DockerV2Schema2MediaType {
		return errors.Wrapf(ErrInvalidManifest, "schema2 manifest with mediaType %q", m.MediaType)
	}
	if err := validateDescriptor("config", m.Config.MediaType, m.Config.Digest, m.Config.Size); err != nil {
		return err
	}
	if m.Layers == nil {
		return errors.Wrap(ErrInvalidManifest, "schema2 manifest has no layers field")
	}
	for i, l := range m.Layers {
		if err := validateDescriptor(layerName(i), l.MediaType, l.Digest, l.Size); err != nil {
			return err
		}
	}
	return nil
}

// MIMEType implements Manifest.
func (m *Schema2) MIMEType() string { return DockerV2Schema2MediaType }

// ConfigInfo implements Manifest.
func (m *Schema2) ConfigInfo() types.BlobInfo { return m.Config.blobInfo() }

// LayerInfos implements Manifest.
func (m *Schema2) LayerInfos() []LayerInfo {
	out := make([]LayerInfo, len(m.Layers))
	for i, l := range m.Layers {
		out[i] = LayerInfo{BlobInfo: l.blobInfo()}
	}
	return out
}

// Serialize implements Manifest. A value built by hand gets schemaVersion and mediaType
// filled in when they are unset.
func (m *Schema2) Serialize() ([]byte, error) {
	if b := serializeOriginal(m); b != nil {
		return b, nil
	}
	c := *m
	if c.SchemaVersion == 0 {
		c.SchemaVersion = 2
	}
	if c.MediaType == "" {
		c.MediaType = DockerV2Schema2MediaType
	}
	if c.Layers == nil {
		c.Layers = []Schema2Descriptor{}
	}
	return json.Marshal(&c)
}

// blobInfo converts a schema2 descriptor.
func (d Schema2Descriptor) blobInfo() types.BlobInfo {
	return types.BlobInfo{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType, URLs: d.URLs}
}

// schema2Descriptor converts a BlobInfo, dropping annotations.
func schema2Descriptor(b types.BlobInfo) Schema2Descriptor {
	return Schema2Descriptor{MediaType: b.MediaType, Size: b.Size, Digest: b.Digest, URLs: b.URLs}
}
