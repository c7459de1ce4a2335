package manifest

import (
	"encoding/json"
	"slices"

	"github.com/imgcopy/imgcopy/types"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// IndexInstance is one entry of an index: the manifest's descriptor and its platform (nil
// when the entry names none, e.g. a nested index or an artifact).
type IndexInstance struct {
	types.BlobInfo
	Platform *imgspecv1.Platform
	// ArtifactType is the OCI descriptor's artifactType ("" for images and in Docker lists).
	ArtifactType string
}

// Index is a Docker manifest list or an OCI index.
type Index interface {
	// MIMEType returns the index's MIME type.
	MIMEType() string
	// Instances returns the entries in index order.
	Instances() []IndexInstance
	// Serialize returns the index bytes; an unchanged parsed index serializes to its original
	// bytes exactly.
	Serialize() ([]byte, error)
}

// Schema2PlatformSpec is the platform of a Docker manifest list entry.
type Schema2PlatformSpec struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
	Features     []string `json:"features,omitempty"`
}

// Schema2ManifestDescriptor is one entry of a Docker manifest list.
type Schema2ManifestDescriptor struct {
	Schema2Descriptor
	Platform Schema2PlatformSpec `json:"platform"`
}

// Schema2List is a Docker manifest list
// (https://distribution.github.io/distribution/spec/manifest-v2-2/#manifest-list).
type Schema2List struct {
	SchemaVersion int                         `json:"schemaVersion"`
	MediaType     string                      `json:"mediaType"`
	Manifests     []Schema2ManifestDescriptor `json:"manifests"`

	raw []byte
}

// OCI1Index is an OCI image index (image-spec v1.1 image-index.md); entries may be manifests
// or nested indexes.
type OCI1Index struct {
	imgspecv1.Index

	raw []byte
}

var (
	_ Index = (*Schema2List)(nil)
	_ Index = (*OCI1Index)(nil)
)

func (l *Schema2List) rawBytes() []byte  { return l.raw }
func (l *Schema2List) setRaw(raw []byte) { l.raw = raw }
func (idx *OCI1Index) rawBytes() []byte  { return idx.raw }
func (idx *OCI1Index) setRaw(raw []byte) { idx.raw = raw }

// IndexFromBlob parses a Docker manifest list or an OCI index. With mimeType "" the type is
// guessed; a single-image manifest type fails with ErrUnsupportedMIMEType.
func IndexFromBlob(b []byte, mimeType string) (Index, error) {
	mt, err := resolveMIMEType(b, mimeType)
	if err != nil {
		return nil, err
	}
	switch mt {
	case DockerV2ListMediaType:
		return schema2ListFromBlob(b)
	case imgspecv1.MediaTypeImageIndex:
		return oci1IndexFromBlob(b)
	}
	return nil, errors.Wrapf(ErrUnsupportedMIMEType, "%q is not an index type", mt)
}

// schema2ListFromBlob parses and validates a Docker manifest list.
func schema2ListFromBlob(b []byte) (*Schema2List, error) {
	if err := checkUnambiguous(b, DockerV2ListMediaType, fieldManifests); err != nil {
		return nil, err
	}
	l := &Schema2List{}
	if err := unmarshalStrict(b, l, DockerV2ListMediaType); err != nil {
		return nil, err
	}
	if l.SchemaVersion != 2 || l.MediaType != DockerV2ListMediaType {
		return nil, errors.Wrapf(ErrInvalidManifest, "manifest list with schemaVersion %d and mediaType %q",
			l.SchemaVersion, l.MediaType)
	}
	if l.Manifests == nil {
		return nil, errors.Wrap(ErrInvalidManifest, "manifest list has no manifests field")
	}
	for i, d := range l.Manifests {
		if err := validateDescriptor(instanceName(i), d.MediaType, d.Digest, d.Size); err != nil {
			return nil, err
		}
	}
	l.raw = b
	return l, nil
}

// oci1IndexFromBlob parses and validates an OCI index.
func oci1IndexFromBlob(b []byte) (*OCI1Index, error) {
	mt := imgspecv1.MediaTypeImageIndex
	if err := checkUnambiguous(b, mt, fieldManifests); err != nil {
		return nil, err
	}
	idx := &OCI1Index{}
	if err := unmarshalStrict(b, idx, mt); err != nil {
		return nil, err
	}
	if idx.SchemaVersion != 2 || (idx.MediaType != "" && idx.MediaType != mt) {
		return nil, errors.Wrapf(ErrInvalidManifest, "OCI index with schemaVersion %d and mediaType %q",
			idx.SchemaVersion, idx.MediaType)
	}
	if idx.Manifests == nil {
		return nil, errors.Wrap(ErrInvalidManifest, "OCI index has no manifests field")
	}
	for i, d := range idx.Manifests {
		if err := validateOCIDescriptor(instanceName(i), d); err != nil {
			return nil, err
		}
	}
	if idx.Subject != nil {
		if err := validateOCIDescriptor("subject", *idx.Subject); err != nil {
			return nil, err
		}
	}
	idx.raw = b
	return idx, nil
}

// MIMEType implements Index.
func (l *Schema2List) MIMEType() string { return DockerV2ListMediaType }

// Instances implements Index.
func (l *Schema2List) Instances() []IndexInstance {
	out := make([]IndexInstance, len(l.Manifests))
	for i, d := range l.Manifests {
		p := d.Platform
		out[i] = IndexInstance{BlobInfo: d.blobInfo(), Platform: &imgspecv1.Platform{
			Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion,
			OSFeatures: slices.Clone(p.OSFeatures), Variant: p.Variant,
		}}
	}
	return out
}

// Serialize implements Index. A value built by hand gets schemaVersion and mediaType filled
// in when they are unset.
func (l *Schema2List) Serialize() ([]byte, error) {
	if b := serializeOriginal(l); b != nil {
		return b, nil
	}
	c := *l
	if c.SchemaVersion == 0 {
		c.SchemaVersion = 2
	}
	if c.MediaType == "" {
		c.MediaType = DockerV2ListMediaType
	}
	if c.Manifests == nil {
		c.Manifests = []Schema2ManifestDescriptor{}
	}
	return json.Marshal(&c)
}

// MIMEType implements Index.
func (idx *OCI1Index) MIMEType() string { return imgspecv1.MediaTypeImageIndex }

// Instances implements Index.
func (idx *OCI1Index) Instances() []IndexInstance {
	out := make([]IndexInstance, len(idx.Manifests))
	for i, d := range idx.Manifests {
		out[i] = IndexInstance{BlobInfo: ociBlobInfo(d), ArtifactType: d.ArtifactType}
		if d.Platform != nil {
			p := *d.Platform
			p.OSFeatures = slices.Clone(p.OSFeatures)
			out[i].Platform = &p
		}
	}
	return out
}

// Serialize implements Index. A value built by hand gets schemaVersion and mediaType filled
// in when they are unset.
func (idx *OCI1Index) Serialize() ([]byte, error) {
	if b := serializeOriginal(idx); b != nil {
		return b, nil
	}
	c := *idx
	if c.SchemaVersion == 0 {
		c.SchemaVersion = 2
	}
	if c.MediaType == "" {
		c.MediaType = imgspecv1.MediaTypeImageIndex
	}
	if c.Manifests == nil {
		c.Manifests = []imgspecv1.Descriptor{}
	}
	return json.Marshal(&c.Index)
}
