package types

import (
	"time"

	digest "github.com/opencontainers/go-digest"
)

// BICTransportScope is a transport-defined scope within which blob locations are comparable,
// e.g. a registry host for docker.
type BICTransportScope struct {
	Opaque string
}

// BICLocationReference is a transport-defined location of a blob within a scope, e.g. a
// repository path for docker.
type BICLocationReference struct {
	Opaque string
}

// BICReplacementCandidate is a place where a blob (or a blob with the same uncompressed
// content) may be found, returned by BlobInfoCache.CandidateLocations.
type BICReplacementCandidate struct {
	Digest         digest.Digest
	CompressorName string // "" when unknown
	Location       BICLocationReference
	LastSeen       time.Time
}

// Compressor names recorded in a BlobInfoCache.
const (
	// UncompressedCompressorName marks a blob known to be uncompressed.
	UncompressedCompressorName = "uncompressed"
	// GzipCompressorName marks a gzip-compressed blob.
	GzipCompressorName = "gzip"
	// ZstdCompressorName marks a zstd-compressed blob.
	ZstdCompressorName = "zstd"
)

// BlobInfoCache remembers facts about blobs across copies: which compressed digest has which
// uncompressed digest, which compressor produced a digest, and where a blob was seen. None of
// its methods return errors: a broken cache costs speed, never correctness. Implementations
// are safe for concurrent use. A nil BlobInfoCache argument anywhere means "no cache".
type BlobInfoCache interface {
	// UncompressedDigest returns the uncompressed digest of anyDigest (anyDigest itself when it
	// is known to be uncompressed), or "" when unknown.
	UncompressedDigest(anyDigest digest.Digest) digest.Digest
	// RecordDigestUncompressedPair records that the uncompressed form of anyDigest is uncompressed.
	RecordDigestUncompressedPair(anyDigest, uncompressed digest.Digest)
	// RecordDigestCompressorName records the compressor of a blob (see the *CompressorName constants).
	RecordDigestCompressorName(anyDigest digest.Digest, compressorName string)
	// RecordKnownLocation records that blobDigest was seen at location within scope of transport.
	RecordKnownLocation(transport string, scope BICTransportScope, blobDigest digest.Digest, location BICLocationReference)
	// CandidateLocations returns places within scope of transport where d may be found, most
	// recently seen first. With canSubstitute it also returns blobs with the same uncompressed
	// content (other compressions), each with its own digest.
	CandidateLocations(transport string, scope BICTransportScope, d digest.Digest, canSubstitute bool) []BICReplacementCandidate
}

// BlobInfoCacheFlusher is implemented by a BlobInfoCache that writes its records behind, in
// batches. Flush stores every record made so far; copy.Image calls it before it returns. An
// error means the records stay in memory only; as with the rest of the cache, it never fails
// a copy.
type BlobInfoCacheFlusher interface {
	Flush() error
}

// BlobLocationForgetter is implemented by a BlobInfoCache that can drop a location a transport
// found wrong: a registry that refuses to mount a blob from a repository the cache names (the
// blob was deleted or garbage-collected there, or the repository is gone). Later copies then
// do not ask there again. Forgetting a location that is not recorded does nothing.
type BlobLocationForgetter interface {
	ForgetKnownLocation(transport string, scope BICTransportScope, blobDigest digest.Digest, location BICLocationReference)
}
