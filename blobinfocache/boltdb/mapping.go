package boltdb

import (
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/imgcopy/imgcopy/types"
)

// manifestMappings maps a source manifest digest and a copy variant (key: digest, NUL,
// variant) to the time-stamped digest the copy wrote; mappingsCounter counts its records,
// bounded like the other digest records by maxDigests.
var (
	manifestMappingBucket = []byte("manifestMapping")
	mappingsCounter       = []byte("mappings")
)

var _ types.ManifestMappingCache = (*cache)(nil)

func mappingKey(src digest.Digest, variant string) []byte {
	return []byte(string(src) + "\x00" + variant)
}

// RecordManifestMapping implements types.ManifestMappingCache.
func (c *cache) RecordManifestMapping(src digest.Digest, variant string, written digest.Digest) {
	if src == "" || written == "" || len(src)+len(variant) >= maxKeyLen || len(written) > maxKeyLen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	replay := func(m types.BlobInfoCache) {
		if mm, ok := m.(types.ManifestMappingCache); ok {
			mm.RecordManifestMapping(src, variant, written)
		}
	}
	if c.fallback != nil {
		replay(c.fallback)
		return
	}
	now := c.clock.Now()
	c.queue(pendingRecord{
		apply: func(tx *bolt.Tx) error {
			return putFlat(tx, manifestMappingBucket, mappingsCounter, mappingKey(src, variant), string(written), now, c.maxDigests)
		},
		replay:  replay,
		digests: []digest.Digest{src},
	})
}

// ManifestMapping implements types.ManifestMappingCache.
func (c *cache) ManifestMapping(src digest.Digest, variant string) digest.Digest {
	c.mu.Lock()
	defer c.mu.Unlock()
	fromFallback := func() digest.Digest {
		if mm, ok := c.fallback.(types.ManifestMappingCache); ok {
			return mm.ManifestMapping(src, variant)
		}
		return ""
	}
	if c.fallback != nil {
		return fromFallback()
	}
	var res digest.Digest
	if !c.lookup(func(tx *bolt.Tx, read func(...digest.Digest)) error {
		read(src)
		if b := tx.Bucket(manifestMappingBucket); b != nil {
			if _, w, ok := decodeStamped(b.Get(mappingKey(src, variant))); ok {
				res = digest.Digest(w)
			}
		}
		return nil
	}) {
		return fromFallback()
	}
	return res
}
