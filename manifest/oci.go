package manifest

import (
	"encoding/json"

	"github.com/imgcopy/imgcopy/types"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// OCI1 is an OCI image manifest (image-spec v1.1 manifest.md), including artifacts
// (artifactType), subject and annotations.
type OCI1 struct {
	imgspecv1.Manifest

	raw []byte
}

var _ Manifest = (*OCI1)(nil)

func (m *OCI1) rawBytes() []byte  { return m.raw }
func (m *OCI1) setRaw(raw []byte) { m.raw = raw }

// oci1FromBlob parses and validates an OCI image manifest.
func oci1FromBlob(b []byte) (*OCI1, error) {
	mt := imgspecv1.MediaTypeImageManifest
	if err := checkUnambiguous(b, mt, fieldConfig|fieldLayers); err != nil {
		return nil, err
	}
	m := &OCI1{}
	if err := unmarshalStrict(b, m, mt); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.raw = b
	return m, nil
}

// validate checks the manifest.md rules that a parse cannot.
func (m *OCI1) validate() error {
	if m.SchemaVersion != 2 {
		return errors.Wrapf(ErrInvalidManifest, "OCI manifest with schemaVersion %d", m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != imgspecv1.MediaTypeImageManifest {
		return errors.Wrapf(ErrInvalidManifest, "OCI manifest with mediaType %q", m.MediaType)
	}
	if err := validateOCIDescriptor("config", m.Config); err != nil {
		return err
	}
	if m.Layers == nil {
		return errors.Wrap(ErrInvalidManifest, "OCI manifest has no layers field")
	}
	for i, l := range m.Layers {
		if err := validateOCIDescriptor(layerName(i), l); err != nil {
			return err
		}
	}
	if m.Subject != nil {
		return validateOCIDescriptor("subject", *m.Subject)
	}
	return nil
}

// validateOCIDescriptor checks a descriptor, including embedded data (descriptor.md).
func validateOCIDescriptor(what string, d imgspecv1.Descriptor) error {
	if err := validateDescriptor(what, d.MediaType, d.Digest, d.Size); err != nil {
		return err
	}
	if d.Data == nil {
		return nil
	}
	if int64(len(d.Data)) != d.Size || !d.Digest.Algorithm().Available() ||
		d.Digest.Algorithm().FromBytes(d.Data) != d.Digest {
		return errors.Wrapf(ErrInvalidManifest, "%s data (%d bytes) does not match its digest and size",
			what, len(d.Data))
	}
	return nil
}

// MIMEType implements Manifest.
func (m *OCI1) MIMEType() string { return imgspecv1.MediaTypeImageManifest }

// ConfigInfo implements Manifest.
func (m *OCI1) ConfigInfo() types.BlobInfo { return ociBlobInfo(m.Config) }

// LayerInfos implements Manifest.
func (m *OCI1) LayerInfos() []LayerInfo {
	out := make([]LayerInfo, len(m.Layers))
	for i, l := range m.Layers {
		out[i] = LayerInfo{BlobInfo: ociBlobInfo(l)}
	}
	return out
}

// Serialize implements Manifest. A value built by hand gets schemaVersion and mediaType
// filled in when they are unset.
func (m *OCI1) Serialize() ([]byte, error) {
	if b := serializeOriginal(m); b != nil {
		return b, nil
	}
	c := *m
	if c.SchemaVersion == 0 {
		c.SchemaVersion = 2
	}
	if c.MediaType == "" {
		c.MediaType = imgspecv1.MediaTypeImageManifest
	}
	if c.Layers == nil {
		c.Layers = []imgspecv1.Descriptor{}
	}
	return json.Marshal(&c.Manifest)
}

// ociBlobInfo converts an OCI descriptor.
func ociBlobInfo(d imgspecv1.Descriptor) types.BlobInfo {
	return types.BlobInfo{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType,
		URLs: d.URLs, Annotations: d.Annotations}
}

// ociDescriptor converts a BlobInfo.
func ociDescriptor(b types.BlobInfo) imgspecv1.Descriptor {
	return imgspecv1.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size,
		URLs: b.URLs, Annotations: b.Annotations}
}
