package manifest

import (
	"encoding/json"
	"mime"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/types"
)

// Docker media types. OCI media types are the constants of imgspecv1.
const (
	// DockerV2Schema1MediaType is the MIME type of an unsigned Docker schema1 manifest.
	DockerV2Schema1MediaType = "application/vnd.docker.distribution.manifest.v1+json"
	// DockerV2Schema1SignedMediaType is the MIME type of a signed (JWS) Docker schema1 manifest.
	DockerV2Schema1SignedMediaType = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	// DockerV2Schema2MediaType is the MIME type of a Docker schema2 manifest.
	DockerV2Schema2MediaType = "application/vnd.docker.distribution.manifest.v2+json"
	// DockerV2Schema2ConfigMediaType is the MIME type of a Docker image config.
	DockerV2Schema2ConfigMediaType = "application/vnd.docker.container.image.v1+json"
	// DockerV2Schema2LayerMediaType is the MIME type of a gzip-compressed Docker layer.
	DockerV2Schema2LayerMediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// DockerV2SchemaLayerMediaTypeUncompressed is the MIME type of an uncompressed Docker layer.
	DockerV2SchemaLayerMediaTypeUncompressed = "application/vnd.docker.image.rootfs.diff.tar"
	// DockerV2Schema2ForeignLayerMediaType is the MIME type of an uncompressed foreign layer
	// (one fetched from its URLs, not from the registry).
	DockerV2Schema2ForeignLayerMediaType = "application/vnd.docker.image.rootfs.foreign.diff.tar"
	// DockerV2Schema2ForeignLayerMediaTypeGzip is the MIME type of a gzip-compressed foreign layer.
	DockerV2Schema2ForeignLayerMediaTypeGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	// DockerV2ListMediaType is the MIME type of a Docker manifest list.
	DockerV2ListMediaType = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// The sentinels of this package live in types/errors.go, with their error classes; these
// names stay for importers.
var (
	// ErrUnsupportedMIMEType is types.ErrUnsupportedMIMEType.
	ErrUnsupportedMIMEType = types.ErrUnsupportedMIMEType
	// ErrInvalidManifest is types.ErrInvalidManifest.
	ErrInvalidManifest = types.ErrInvalidManifest
	// ErrConversionLoss is types.ErrConversionLoss.
	ErrConversionLoss = types.ErrConversionLoss
)

// SupportedMIMETypes returns every manifest and index MIME type this package parses, best
// first, e.g. for an HTTP Accept header.
func SupportedMIMETypes() []string {
	return []string{
		imgspecv1.MediaTypeImageManifest,
		imgspecv1.MediaTypeImageIndex,
		DockerV2Schema2MediaType,
		DockerV2ListMediaType,
		DockerV2Schema1SignedMediaType,
		DockerV2Schema1MediaType,
	}
}

// IsIndexType reports whether mimeType is a Docker manifest list or an OCI index.
func IsIndexType(mimeType string) bool {
	mt := normalizeMIMEType(mimeType)
	return mt == DockerV2ListMediaType || mt == imgspecv1.MediaTypeImageIndex
}

// IsSchema1Type reports whether mimeType is a Docker schema1 manifest, signed or not.
func IsSchema1Type(mimeType string) bool {
	mt := normalizeMIMEType(mimeType)
	return mt == DockerV2Schema1MediaType || mt == DockerV2Schema1SignedMediaType
}

// normalizeMIMEType drops MIME parameters and case, and maps the generic types registries
// serve old manifests with ("application/json", "text/plain") to "" so that callers guess.
func normalizeMIMEType(mimeType string) string {
	if mimeType == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(mimeType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(mimeType))
	}
	switch mt {
	case "application/json", "text/plain", "application/octet-stream":
		return ""
	}
	return mt
}

// guessMeta is the part of any manifest that GuessMIMEType looks at.
type guessMeta struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Signatures    json.RawMessage `json:"signatures"`
	Config        json.RawMessage `json:"config"`
	Manifests     json.RawMessage `json:"manifests"`
}

// GuessMIMEType returns the MIME type of the manifest or index b, or "" when b is not one
// this package knows. A declared mediaType wins; schema1 is recognised by schemaVersion 1,
// and OCI documents without mediaType by their config or manifests field.
func GuessMIMEType(b []byte) string {
	var meta guessMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return ""
	}
	switch meta.SchemaVersion {
	case 1:
		if meta.MediaType != "" && meta.MediaType != DockerV2Schema1MediaType &&
			meta.MediaType != DockerV2Schema1SignedMediaType {
			return ""
		}
		if hasSignatures(meta.Signatures) {
			return DockerV2Schema1SignedMediaType
		}
		return DockerV2Schema1MediaType
	case 2:
		return guessSchemaVersion2(meta)
	}
	return ""
}

// guessSchemaVersion2 tells the four schemaVersion 2 formats apart.
func guessSchemaVersion2(meta guessMeta) string {
	switch meta.MediaType {
	case DockerV2Schema2MediaType, DockerV2ListMediaType,
		imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageIndex:
		return meta.MediaType
	case "":
		if isJSONPresent(meta.Config) {
			// Old Docker tools omitted mediaType; their config type tells them apart.
			var c struct {
				MediaType string `json:"mediaType"`
			}
			if json.Unmarshal(meta.Config, &c) == nil && c.MediaType == DockerV2Schema2ConfigMediaType {
				return DockerV2Schema2MediaType
			}
			return imgspecv1.MediaTypeImageManifest
		}
		if isJSONPresent(meta.Manifests) {
			return imgspecv1.MediaTypeImageIndex
		}
	}
	return ""
}

// hasSignatures reports whether a schema1 "signatures" field holds any signature; a field
// that is not a list counts, so that parsing it fails rather than ignores it.
func hasSignatures(raw json.RawMessage) bool {
	if !isJSONPresent(raw) {
		return false
	}
	var list []json.RawMessage
	return json.Unmarshal(raw, &list) != nil || len(list) > 0
}

// isJSONPresent reports whether a raw field was present with a non-null value.
func isJSONPresent(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}
