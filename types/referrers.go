package types

import (
	"context"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// This file holds the optional interfaces that let the artifacts referring to an image travel
// with it: signatures, SBOMs and attestations stored as manifests whose subject is the image
// (OCI image-spec 1.1 "referrers"), and the tags cosign derives from the image's digest
// (sha256-<hex>.sig, .att, .sbom). They are checked with type assertions on the image's own
// source and destination, so the related manifests are written in the same session as the
// image and become visible with it.
//
// A copy that carries related manifests extends the call order of the package documentation:
// after the top-level PutManifest (step 3) and before Commit (step 4) it
//
//  1. lists the referrers of each manifest it wrote unchanged, at the source and at the
//     destination (ReferrersLister), so that those the destination holds already are skipped;
//  2. reads each missing one with RelatedSource.GetRelatedManifest (a referrer by digest, a
//     cosign tag by name), copies its blobs with TryReusingBlob and PutBlob as for the image
//     (byte for byte: digests are never changed), and writes it with
//     RelatedDestination.PutRelatedManifest, the manifests an index lists before the index.
//
// Referrer bookkeeping is the destination's: every manifest with a subject that a
// RelatedDestination stores (through PutManifest or PutRelatedManifest) is recorded as a
// referrer of its subject, and Commit makes the records visible together with the image. A
// registry that processed the subject when the manifest was pushed (it answered with the
// OCI-Subject header, distribution-spec v1.1) lists it in its referrers API by itself;
// otherwise the destination adds it to the subject's referrers index, the OCI index tagged
// "<alg>-<hex>" (the distribution-spec's referrers tag schema, which OCI layouts and archives
// use too). Updating that index must not lose an entry another writer adds at the same time:
// each destination documents how it ensures this. Tags (PutRelatedOptions.Tag) are likewise
// applied only by Commit.

// ReferrersLister is implemented by sources and destinations whose storage can tell which
// manifests refer to another one: a registry (its referrers API, else the referrers tag
// schema), an OCI layout or archive (the referrers indexes in index.json).
//
// ListReferrers returns the descriptors of the manifests whose subject is the manifest with
// digest subject, as the storage lists them (mediaType, digest, size, artifactType,
// annotations), without duplicates; none is an empty list, not an error. The summary fields
// are the storage's and may be inaccurate (some registries report config.mediaType as
// artifactType): callers that filter by type read the manifest itself. A destination lists
// what it stored before this session, not what the session has written so far.
type ReferrersLister interface {
	ListReferrers(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error)
}

// RelatedSource is implemented by sources that can read manifests of their repository or
// layout other than the image's own: the referrers ListReferrers returns (and the manifests
// they list when they are indexes) and tagged manifests such as cosign's sha256-<hex>.sig.
// Their blobs are read with GetBlob.
type RelatedSource interface {
	// GetRelatedManifest returns the manifest named by ref, a digest ("sha256:…", checked
	// against the bytes) or a tag, and its MIME type ("" when unknown). A missing manifest is
	// ErrManifestNotFound (wrapped).
	GetRelatedManifest(ctx context.Context, ref string) ([]byte, string, error)
}

// PutRelatedOptions are the optional arguments of RelatedDestination.PutRelatedManifest.
type PutRelatedOptions struct {
	// Tag, when set, names the manifest in the destination's repository or layout at Commit
	// (e.g. cosign's "sha256-<hex>.sig"); without it the manifest is stored by digest only.
	Tag string
}

// RelatedDestination is implemented by destinations that can store, in the same session as
// the image, other manifests of their repository or layout: referrers of the image (recorded
// as described above) and tagged manifests.
type RelatedDestination interface {
	// PutRelatedManifest stores a manifest that is not part of the image, after its blobs and
	// (for an index) the manifests it lists. The destination keeps the bytes and so the digest.
	PutRelatedManifest(ctx context.Context, body []byte, mimeType string, opts PutRelatedOptions) error
}

// LazySourceOpener is implemented by references whose NewImageSource reads the image as it
// opens (a registry source fetches the manifest, so that a missing image fails the open) but
// that can also open without reading anything. A sync opens this way the source of an image
// the destination already holds, to compare its referrers and digest tags with the
// destination's from listings alone (ReferrersLister, RelatedDigester): registries such as
// Docker Hub count every manifest GET as a pull.
type LazySourceOpener interface {
	// NewLazyImageSource is NewImageSource without any read at open: a missing image fails
	// at the first call that needs it.
	NewLazyImageSource(ctx context.Context, sys *SystemContext) (ImageSource, error)
}

// RelatedDigester is implemented by sources and destinations that can tell which manifest a
// tag of their repository or layout names without reading it (a registry's HEAD), so that a
// digest tag the destination holds already is neither read nor written again.
type RelatedDigester interface {
	// RelatedDigest returns the digest of the manifest tag names; ErrManifestNotFound
	// (wrapped) when there is none.
	RelatedDigest(ctx context.Context, tag string) (digest.Digest, error)
}
