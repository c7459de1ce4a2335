package layout

import (
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
)

// `cosign save --dir DIR IMAGE` (sigstore/cosign pkg/oci/layout/write.go), cosign's way to
// carry a signed image offline, writes a layout of one image (or index) with its signatures
// and attestations beside it: entries without a name, told apart by a "kind" annotation. We
// read those signatures and attestations as the digest tags cosign pushes them under in a
// registry (sha256-<hex>.sig, .att; cosign load does the same), so that --digest-tags carries
// them, byte for byte, and they are not images of their own.

const (
	cosignKindAnnotation = "kind"
	cosignKindImage      = "dev.cosignproject.cosign/image"
	cosignKindImageIndex = "dev.cosignproject.cosign/imageIndex"
)

// cosignSuffixes maps the kinds of cosign save's attachment entries to the suffix of the tag
// cosign uses for them in a registry.
var cosignSuffixes = map[string]string{
	"dev.cosignproject.cosign/sigs": "sig",
	"dev.cosignproject.cosign/atts": "att",
}

// isCosignAttachment reports whether an index.json entry is a signature or attestation entry
// of cosign save (an unnamed manifest with cosign's kind).
func isCosignAttachment(desc imgspecv1.Descriptor) bool {
	_, ok := cosignSuffixes[desc.Annotations[cosignKindAnnotation]]
	return ok && RefName(desc) == "" && desc.MediaType == imgspecv1.MediaTypeImageManifest
}

// cosignNames returns, by position in idx, the digest-tag names of cosign save's attachment
// entries: "<alg>-<hex>.sig" or ".att" of the one entry that cosign marked as the signed image
// or index. None when no entry, or several, are so marked (not cosign's layout: the names
// would be guesses).
func cosignNames(idx *imgspecv1.Index) map[int]string {
	var signed digest.Digest
	for _, e := range idx.Manifests {
		if k := e.Annotations[cosignKindAnnotation]; k == cosignKindImage || k == cosignKindImageIndex {
			if signed != "" && signed != e.Digest {
				return nil
			}
			signed = e.Digest
		}
	}
	if signed == "" {
		return nil
	}
	var names map[int]string
	for i, e := range idx.Manifests {
		if !isCosignAttachment(e) {
			continue
		}
		if names == nil {
			names = map[int]string{}
		}
		names[i] = manifest.DigestTagPrefix(signed) + cosignSuffixes[e.Annotations[cosignKindAnnotation]]
	}
	return names
}
