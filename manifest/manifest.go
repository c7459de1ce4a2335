package manifest

import (
	"encoding/json"
	"reflect"
	"slices"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// LayerInfo is a layer as the manifest lists it.
type LayerInfo struct {
	types.BlobInfo
	// EmptyLayer is true for schema1 "throwaway" layers, which change no files and have no
	// entry in the image config's rootfs.
	EmptyLayer bool
}

// Manifest is one single-image manifest (schema1, schema2, OCI).
type Manifest interface {
	// MIMEType returns the manifest's MIME type.
	MIMEType() string
	// ConfigInfo returns the config descriptor; the zero BlobInfo for schema1.
	ConfigInfo() types.BlobInfo
	// LayerInfos returns the layers in application order (base first), also for schema1.
	LayerInfos() []LayerInfo
	// Serialize returns the manifest bytes; an unchanged parsed manifest serializes to its
	// original bytes exactly.
	Serialize() ([]byte, error)
}

// FromBlob parses a single-image manifest. With mimeType "" (or a generic type such as
// "application/json") the type is guessed; an index type fails with ErrUnsupportedMIMEType.
// Blobs over iolimits.MaxManifestBodySize fail with iolimits.ErrTooLarge (wrapped).
func FromBlob(b []byte, mimeType string) (Manifest, error) {
	mt, err := resolveMIMEType(b, mimeType)
	if err != nil {
		return nil, err
	}
	switch mt {
	case DockerV2Schema2MediaType:
		return schema2FromBlob(b)
	case imgspecv1.MediaTypeImageManifest:
		return oci1FromBlob(b)
	case DockerV2Schema1MediaType, DockerV2Schema1SignedMediaType:
		return schema1FromBlob(b)
	case DockerV2ListMediaType, imgspecv1.MediaTypeImageIndex:
		return nil, errors.Wrapf(ErrUnsupportedMIMEType, "%s is an index, not a single-image manifest", mt)
	}
	return nil, errors.Wrapf(ErrUnsupportedMIMEType, "parsing manifest of type %q", mt)
}

// resolveMIMEType checks the size cap and returns the normalized or guessed MIME type.
func resolveMIMEType(b []byte, mimeType string) (string, error) {
	if len(b) > iolimits.MaxManifestBodySize {
		return "", errors.Wrapf(iolimits.ErrTooLarge, "manifest of %d bytes, limit %d",
			len(b), iolimits.MaxManifestBodySize)
	}
	mt := normalizeMIMEType(mimeType)
	if mt != "" {
		return mt, nil
	}
	if !json.Valid(b) {
		return "", errors.Wrap(ErrInvalidManifest, "manifest is not valid JSON")
	}
	mt = GuessMIMEType(b)
	if mt == "" {
		return "", errors.Wrap(ErrUnsupportedMIMEType, "manifest format not recognized")
	}
	return mt, nil
}

// unmarshalStrict decodes b into v, wrapping any failure in ErrInvalidManifest.
func unmarshalStrict(b []byte, v any, what string) error {
	if err := json.Unmarshal(b, v); err != nil {
		return errors.Wrapf(ErrInvalidManifest, "parsing %s: %v", what, err)
	}
	return nil
}

// Fields that identify a document's format; a document carrying fields of another format is
// rejected so that two parsers can never read it differently (CVE-2021-41190).
type fieldSet int

const (
	fieldConfig fieldSet = 1 << iota
	fieldLayers
	fieldManifests
	fieldFSLayers
	fieldHistory
)

// formatFields mirrors the identifying fields; encoding/json matches keys case-insensitively,
// exactly as the real parse does.
type formatFields struct {
	Config    json.RawMessage `json:"config"`
	Layers    json.RawMessage `json:"layers"`
	Manifests json.RawMessage `json:"manifests"`
	FSLayers  json.RawMessage `json:"fsLayers"`
	History   json.RawMessage `json:"history"`
}

// checkUnambiguous fails with ErrInvalidManifest when b has identifying fields outside allowed.
func checkUnambiguous(b []byte, mimeType string, allowed fieldSet) error {
	var f formatFields
	if err := unmarshalStrict(b, &f, mimeType); err != nil {
		return err
	}
	present := []struct {
		raw  json.RawMessage
		bit  fieldSet
		name string
	}{
		{f.Config, fieldConfig, "config"}, {f.Layers, fieldLayers, "layers"},
		{f.Manifests, fieldManifests, "manifests"}, {f.FSLayers, fieldFSLayers, "fsLayers"},
		{f.History, fieldHistory, "history"},
	}
	for _, p := range present {
		if isJSONPresent(p.raw) && allowed&p.bit == 0 {
			return errors.Wrapf(ErrInvalidManifest, "%s document has a %q field", mimeType, p.name)
		}
	}
	return nil
}

// rawKeeper is implemented by the concrete manifest types, which remember the bytes they
// were parsed from.
type rawKeeper interface {
	rawBytes() []byte
	setRaw([]byte)
}

// serializeOriginal returns the parsed bytes of m when m still equals what they decode to,
// and nil otherwise (m was built by hand or changed after parsing).
func serializeOriginal[T any, PT interface {
	*T
	rawKeeper
}](m PT) []byte {
	raw := m.rawBytes()
	if raw == nil {
		return nil
	}
	orig := PT(new(T))
	if err := json.Unmarshal(raw, orig); err != nil {
		return nil
	}
	orig.setRaw(raw)
	if !reflect.DeepEqual(orig, m) {
		return nil
	}
	return slices.Clone(raw)
}

// validateDescriptor checks the fields every descriptor must have.
func validateDescriptor(what, mediaType string, d digest.Digest, size int64) error {
	if mediaType == "" {
		return errors.Wrapf(ErrInvalidManifest, "%s has no mediaType", what)
	}
	if err := d.Validate(); err != nil {
		return errors.Wrapf(ErrInvalidManifest, "%s digest %q: %v", what, d, err)
	}
	if size < 0 {
		return errors.Wrapf(ErrInvalidManifest, "%s has negative size %d", what, size)
	}
	return nil
}
