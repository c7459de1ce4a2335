package manifest

import (
	"encoding/json"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// This file knows the formats of referrers (OCI 1.1 artifacts with a subject): the facts a
// referrers response lists about one, the referrers tag schema of the distribution-spec, and
// the cosign tags derived from a digest.

// maxFallbackTagHex bounds the encoded digest in a referrers tag (distribution-spec "Referrers
// Tag Schema": the digest's encoded part truncated to 64 characters).
const maxFallbackTagHex = 64

// FallbackTag returns the tag of subject's referrers index in the referrers tag schema,
// "<alg>-<encoded>" with the encoded digest cut to 64 characters (e.g. "sha256-<hex>").
func FallbackTag(subject digest.Digest) string {
	enc := subject.Encoded()
	if len(enc) > maxFallbackTagHex {
		enc = enc[:maxFallbackTagHex]
	}
	return subject.Algorithm().String() + "-" + enc
}

// DigestTagPrefix returns the prefix of the tags cosign and similar tools derive from d
// ("sha256-<hex>." for sha256-<hex>.sig, .att, .sbom): a tag starting with it belongs to d.
// The referrers index tag itself (FallbackTag) has no dot and does not match.
func DigestTagPrefix(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded() + "."
}

// Artifact is what makes a manifest or index a referrer.
type Artifact struct {
	// Subject is the manifest this one refers to; nil when it has none.
	Subject *imgspecv1.Descriptor
	// ArtifactType is the manifest's artifactType or, for an image manifest without one, its
	// config's media type, as the distribution-spec's referrers listing reports it.
	ArtifactType string
	// Annotations are the manifest's own annotations.
	Annotations map[string]string
}

// artifactFields are the fields of an OCI manifest or index that Artifact reads.
type artifactFields struct {
	MediaType    string                `json:"mediaType"`
	ArtifactType string                `json:"artifactType"`
	Config       *imgspecv1.Descriptor `json:"config"`
	Subject      *imgspecv1.Descriptor `json:"subject"`
	Annotations  map[string]string     `json:"annotations"`
}

// ArtifactOf reads the referrer facts of a manifest or index of any type (Docker types have
// no subject, so their Subject is nil). A subject that is not a valid descriptor is an error
// wrapping ErrInvalidManifest.
func ArtifactOf(b []byte) (Artifact, error) {
	var f artifactFields
	if err := unmarshalStrict(b, &f, "manifest"); err != nil {
		return Artifact{}, err
	}
	a := Artifact{Subject: f.Subject, ArtifactType: f.ArtifactType, Annotations: f.Annotations}
	if a.ArtifactType == "" && f.Config != nil && f.MediaType != imgspecv1.MediaTypeImageIndex {
		a.ArtifactType = f.Config.MediaType
	}
	if a.Subject != nil {
		if err := validateOCIDescriptor("subject", *a.Subject); err != nil {
			return Artifact{}, err
		}
	}
	return a, nil
}

// ReferrerDescriptor returns the descriptor a referrers response lists for the manifest b of
// type mimeType (guessed when ""): its media type, digest, size, artifactType and annotations.
func ReferrerDescriptor(b []byte, mimeType string) (imgspecv1.Descriptor, error) {
	a, err := ArtifactOf(b)
	if err != nil {
		return imgspecv1.Descriptor{}, err
	}
	if mimeType == "" {
		mimeType = GuessMIMEType(b)
	}
	d, err := Digest(b)
	if err != nil {
		return imgspecv1.Descriptor{}, err
	}
	return imgspecv1.Descriptor{MediaType: mimeType, Digest: d, Size: int64(len(b)),
		ArtifactType: a.ArtifactType, Annotations: a.Annotations}, nil
}

// ParseReferrersIndex returns the descriptors a referrers response or referrers index lists;
// it must be an OCI image index whose entries are valid descriptors (ErrInvalidManifest).
func ParseReferrersIndex(b []byte) ([]imgspecv1.Descriptor, error) {
	if !json.Valid(b) {
		return nil, errors.Wrap(ErrInvalidManifest, "a referrers index must be an OCI image index, not invalid JSON")
	}
	if mt := GuessMIMEType(b); mt != imgspecv1.MediaTypeImageIndex {
		return nil, errors.Wrapf(ErrInvalidManifest, "a referrers index must be an OCI image index, not %q", mt)
	}
	var idx imgspecv1.Index
	if err := unmarshalStrict(b, &idx, "referrers index"); err != nil {
		return nil, err
	}
	for i, d := range idx.Manifests {
		if err := validateDescriptor("referrers index entry "+layerName(i), d.MediaType, d.Digest, d.Size); err != nil {
			return nil, err
		}
	}
	if idx.Manifests == nil {
		idx.Manifests = []imgspecv1.Descriptor{}
	}
	return idx.Manifests, nil
}

// AddReferrers returns the referrers index existing (nil: none yet) with the descriptors of
// add appended unless an entry with the same digest is there already. Everything existing
// holds is kept as it is. changed is false when nothing was added; index is then existing.
func AddReferrers(existing []byte, add []imgspecv1.Descriptor) (index []byte, changed bool, err error) {
	top := map[string]json.RawMessage{}
	var entries []json.RawMessage
	listed := map[digest.Digest]bool{}
	if existing != nil {
		descs, err := ParseReferrersIndex(existing)
		if err != nil {
			return nil, false, err
		}
		for _, d := range descs {
			listed[d.Digest] = true
		}
		if err := json.Unmarshal(existing, &top); err != nil {
			return nil, false, errors.Wrapf(ErrInvalidManifest, "parsing referrers index: %v", err)
		}
		if err := json.Unmarshal(top["manifests"], &entries); err != nil && len(top["manifests"]) > 0 {
			return nil, false, errors.Wrapf(ErrInvalidManifest, "parsing referrers index: %v", err)
		}
	}
	for _, d := range add {
		if listed[d.Digest] {
			continue
		}
		listed[d.Digest] = true
		b, err := json.Marshal(d)
		if err != nil {
			return nil, false, err
		}
		entries = append(entries, b)
		changed = true
	}
	if !changed {
		return existing, false, nil
	}
	return marshalReferrersIndex(top, entries)
}

// marshalReferrersIndex writes top with entries as its manifests, filling in schemaVersion
// and mediaType for a new index.
func marshalReferrersIndex(top map[string]json.RawMessage, entries []json.RawMessage) ([]byte, bool, error) {
	if _, ok := top["schemaVersion"]; !ok {
		top["schemaVersion"] = json.RawMessage("2")
	}
	if _, ok := top["mediaType"]; !ok {
		top["mediaType"], _ = json.Marshal(imgspecv1.MediaTypeImageIndex)
	}
	m, err := json.Marshal(entries)
	if err != nil {
		return nil, false, err
	}
	top["manifests"] = m
	b, err := json.Marshal(top)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// IsFallbackTag reports whether tag has the form of a referrers index tag: "<alg>-<hex>" for a
// registered algorithm, the hex as long as the algorithm's digests but at most 64 characters.
func IsFallbackTag(tag string) bool {
	alg, enc, ok := strings.Cut(tag, "-")
	a := digest.Algorithm(alg)
	if !ok || !a.Available() || !isLowerHex(enc) {
		return false
	}
	return len(enc) == min(2*a.Size(), maxFallbackTagHex)
}

// IsDigestTag reports whether tag is named after a digest in the way of DigestTagPrefix:
// "<alg>-<hex>.<suffix>" with the algorithm's full hex digest (cosign's sha256-<hex>.sig).
func IsDigestTag(tag string) bool {
	name, suffix, ok := strings.Cut(tag, ".")
	alg, enc, ok2 := strings.Cut(name, "-")
	return ok && ok2 && suffix != "" && digest.NewDigestFromEncoded(digest.Algorithm(alg), enc).Validate() == nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}
