// Package manifest parses, validates, digests, converts and serializes image manifests:
// Docker schema1 (signed and unsigned), Docker schema2, Docker manifest lists, OCI image
// manifests (including artifactType, subject and annotations) and OCI indexes (including
// nested indexes). It also matches platforms for choosing an image from an index.
//
// Single-image manifests implement Manifest and indexes implement Index; FromBlob and
// IndexFromBlob pick the concrete type (Schema1, Schema2, OCI1, Schema2List, OCI1Index) from
// the MIME type or, when it is unknown, from the content (GuessMIMEType). A parsed value
// remembers its bytes: Serialize returns them unchanged as long as the value is unchanged,
// so digests survive a parse/serialize round trip. Values built by hand (as docker-archive
// does) serialize to compact JSON.
//
// Parsing is strict where ambiguity could be abused: a document must not carry the fields of
// another format (config/layers vs manifests vs fsLayers/history), descriptors need a media
// type, a valid digest and a non-negative size, and a signed schema1 manifest's signed
// payload must say the same as the document, because the digest (Digest) covers only the
// payload. Inputs over 4 MiB (iolimits.MaxManifestBodySize) are refused; callers read them
// with iolimits.ReadAtMost, so nothing larger is ever held in memory.
//
// Update and UpdateIndex never modify their input. They convert between formats
// (schema2 <-> OCI, schema1 -> schema2/OCI, list <-> index) and apply the copy engine's edits
// (new layer digests, another compression). When the target format cannot express something
// the source says (zstd layers, artifacts, subject), they fail with ErrConversionLoss rather
// than drop it; annotations, which schema2 and lists cannot hold and which no consumer of
// those formats relies on, are dropped with a debug log. Every result is re-parsed, so it is
// valid by the same rules as input.
//
// Errors wrap the sentinels ErrInvalidManifest, ErrUnsupportedMIMEType and ErrConversionLoss
// (and types.ErrTooLarge) with detail; test them with errors.Is.
//
// The package serves transports as much as the copy engine: a transport uses Digest or
// MatchesDigest to check a manifest against the digest it is stored under, IsIndexType and
// FromBlob/IndexFromBlob to find the blobs and instances a manifest needs, and the helpers
// of referrer.go to keep the OCI 1.1 referrers index and cosign's digest tags.
//
// # Stability
//
// Parsing (FromBlob, IndexFromBlob, GuessMIMEType), digests (Digest, MatchesDigest), the
// MIME-type constants, conversion (Update, UpdateIndex and their options), the platform
// helpers and the sentinels are stable. Manifest and Index are for reading: only this
// package implements them, so they may gain methods. The concrete schema types (Schema1,
// Schema2, OCI1, Schema2List, OCI1Index and their parts) follow their specifications and
// keep their fields. The referrers and digest-tag helpers of referrer.go follow OCI 1.1 and
// cosign conventions that are still settling, and may change with them.
package manifest
