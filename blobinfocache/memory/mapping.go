package memory

import (
	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

var _ types.ManifestMappingCache = (*cache)(nil)

// mappingKey is a source manifest under a copy variant.
type mappingKey struct {
	src     digest.Digest
	variant string
}

// RecordManifestMapping implements types.ManifestMappingCache; the records share the
// MaxDigests bound.
func (c *cache) RecordManifestMapping(src digest.Digest, variant string, written digest.Digest) {
	if src == "" || written == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mappings == nil {
		c.mappings = map[mappingKey]stamped[digest.Digest]{}
	}
	c.mappings[mappingKey{src, variant}] = stamped[digest.Digest]{value: written, seen: c.clock.Now()}
	if len(c.mappings) > c.limits.MaxDigests {
		for _, k := range oldest(c.mappings, len(c.mappings)-pruneTarget(c.limits.MaxDigests)) {
			delete(c.mappings, k)
		}
	}
}

// ManifestMapping implements types.ManifestMappingCache.
func (c *cache) ManifestMapping(src digest.Digest, variant string) digest.Digest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mappings[mappingKey{src, variant}].value
}
