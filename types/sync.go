package types

import (
	"context"

	digest "github.com/opencontainers/go-digest"
)

// This file holds what a sync (many copies side by side, see package sync) needs from the
// transports and the blob-info cache beyond a single copy: one request budget per registry
// shared by all clients, removing a single name, and remembering what a copy wrote.

// RequestLimiter is shared by the registry clients of many copies running side by side, so
// that together they keep to one budget per registry. A registry transport calls Start
// before each request it sends (SystemContext.RequestLimiter) and the returned done when the
// response headers arrived, or the request failed. Requests that stream a body of unbounded
// length (blob uploads) are not announced: they are bounded by the blob-transfer budget, and
// holding a slot for their whole length could starve the requests they wait for.
type RequestLimiter interface {
	// Start waits until a request to registry (HOST[:PORT] as the reference names it) may be
	// sent. pull is true for manifest GETs, which registries such as Docker Hub count against
	// their pull limits (HEADs and blob GETs are not counted). done receives a lookup of the
	// response headers (nil when the request got no response) so that the limiter can read
	// rate-limit headers; it must be called exactly once.
	Start(ctx context.Context, registry string, pull bool) (done func(header func(name string) string), err error)
}

// TagDeleter is implemented by references whose store can remove one name (a registry tag,
// an OCI layout ref.name) without removing the image for the other names that point to the
// same manifest. A sync's prune uses it; ImageDeleter may remove every name of the image.
type TagDeleter interface {
	DeleteTag(ctx context.Context, sys *SystemContext) error
}

// ManifestMappingCache is implemented by blob-info caches that also remember which manifest a
// copy wrote for a source manifest under given options (a platform subset, a format
// conversion), so that a later sync can see that an unchanged source is up to date at the
// destination from digests alone, without fetching the source manifest. Like the rest of the
// cache it only saves work: a missing record means "copy again".
type ManifestMappingCache interface {
	// RecordManifestMapping records that copying the source manifest src with the options
	// summarized by variant wrote the manifest written.
	RecordManifestMapping(src digest.Digest, variant string, written digest.Digest)
	// ManifestMapping returns what RecordManifestMapping recorded, or "".
	ManifestMapping(src digest.Digest, variant string) digest.Digest
}
