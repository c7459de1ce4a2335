package memory

import (
	"sort"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/blobinfocache/internal/clock"
	"github.com/imgcopy/imgcopy/blobinfocache/internal/prioritize"
	"github.com/imgcopy/imgcopy/types"
)

// Default bounds of a cache made by New.
const (
	// DefaultMaxLocationsPerDigest bounds the locations kept per transport, scope and digest.
	DefaultMaxLocationsPerDigest = 16
	// DefaultMaxLocations bounds the locations kept in total.
	DefaultMaxLocations = 100000
	// DefaultMaxDigests bounds the digest→uncompressed and digest→compressor records, each.
	DefaultMaxDigests = 100000
)

// Limits bounds a cache; zero fields take the defaults.
type Limits struct {
	MaxLocationsPerDigest int
	MaxLocations          int
	MaxDigests            int
}

func (l Limits) withDefaults() Limits {
	if l.MaxLocationsPerDigest <= 0 {
		l.MaxLocationsPerDigest = DefaultMaxLocationsPerDigest
	}
	if l.MaxLocations <= 0 {
		l.MaxLocations = DefaultMaxLocations
	}
	if l.MaxDigests <= 0 {
		l.MaxDigests = DefaultMaxDigests
	}
	return l
}

// locationKey identifies the blob whose locations are listed.
type locationKey struct {
	transport string
	scope     string
	digest    digest.Digest
}

// stamped is a value with the time it was last recorded, for pruning.
type stamped[T any] struct {
	value T
	seen  time.Time
}

// cache implements types.BlobInfoCache in memory.
type cache struct {
	mu     sync.Mutex
	limits Limits
	clock  clock.Clock

	uncompressed   map[digest.Digest]stamped[digest.Digest] // any → uncompressed
	byUncompressed map[digest.Digest]map[digest.Digest]struct{}
	compressors    map[digest.Digest]stamped[string]
	locations      map[locationKey]map[string]time.Time // location → last seen
	nLocations     int
	mappings       map[mappingKey]stamped[digest.Digest] // see mapping.go
}

var (
	_ types.BlobInfoCache         = (*cache)(nil)
	_ types.BlobLocationForgetter = (*cache)(nil)
)

// New returns an empty in-memory cache with the default limits.
func New() types.BlobInfoCache {
	return NewWithLimits(Limits{})
}

// NewWithLimits returns an empty in-memory cache bounded by limits.
func NewWithLimits(limits Limits) types.BlobInfoCache {
	return &cache{
		limits:         limits.withDefaults(),
		uncompressed:   map[digest.Digest]stamped[digest.Digest]{},
		byUncompressed: map[digest.Digest]map[digest.Digest]struct{}{},
		compressors:    map[digest.Digest]stamped[string]{},
		locations:      map[locationKey]map[string]time.Time{},
	}
}

// UncompressedDigest implements types.BlobInfoCache.
func (c *cache) UncompressedDigest(anyDigest digest.Digest) digest.Digest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uncompressedLocked(anyDigest)
}

func (c *cache) uncompressedLocked(anyDigest digest.Digest) digest.Digest {
	if e, ok := c.uncompressed[anyDigest]; ok {
		return e.value
	}
	// Being the uncompressed form of something, or recorded as uncompressed, implies it.
	if len(c.byUncompressed[anyDigest]) > 0 {
		return anyDigest
	}
	if e, ok := c.compressors[anyDigest]; ok && e.value == types.UncompressedCompressorName {
		return anyDigest
	}
	return ""
}

// RecordDigestUncompressedPair implements types.BlobInfoCache.
func (c *cache) RecordDigestUncompressedPair(anyDigest, uncompressed digest.Digest) {
	if anyDigest == "" || uncompressed == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.uncompressed[anyDigest]; ok && old.value != uncompressed {
		// A digest has exactly one uncompressed form; a different claim replaces the old one.
		c.unlinkLocked(anyDigest, old.value)
	}
	c.uncompressed[anyDigest] = stamped[digest.Digest]{value: uncompressed, seen: c.clock.Now()}
	set := c.byUncompressed[uncompressed]
	if set == nil {
		set = map[digest.Digest]struct{}{}
		c.byUncompressed[uncompressed] = set
	}
	set[anyDigest] = struct{}{}
	if len(c.uncompressed) > c.limits.MaxDigests {
		for _, d := range oldest(c.uncompressed, len(c.uncompressed)-pruneTarget(c.limits.MaxDigests)) {
			c.unlinkLocked(d, c.uncompressed[d].value)
			delete(c.uncompressed, d)
		}
	}
}

// unlinkLocked removes anyDigest from the reverse index of uncompressed.
func (c *cache) unlinkLocked(anyDigest, uncompressed digest.Digest) {
	if set := c.byUncompressed[uncompressed]; set != nil {
		delete(set, anyDigest)
		if len(set) == 0 {
			delete(c.byUncompressed, uncompressed)
		}
	}
}

// RecordDigestCompressorName implements types.BlobInfoCache.
func (c *cache) RecordDigestCompressorName(anyDigest digest.Digest, compressorName string) {
	if anyDigest == "" || compressorName == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.compressors[anyDigest] = stamped[string]{value: compressorName, seen: c.clock.Now()}
	if len(c.compressors) > c.limits.MaxDigests {
		for _, d := range oldest(c.compressors, len(c.compressors)-pruneTarget(c.limits.MaxDigests)) {
			delete(c.compressors, d)
		}
	}
}

// RecordKnownLocation implements types.BlobInfoCache.
func (c *cache) RecordKnownLocation(transport string, scope types.BICTransportScope, blobDigest digest.Digest, location types.BICLocationReference) {
	if blobDigest == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := locationKey{transport: transport, scope: scope.Opaque, digest: blobDigest}
	locs := c.locations[key]
	if locs == nil {
		locs = map[string]time.Time{}
		c.locations[key] = locs
	}
	if _, ok := locs[location.Opaque]; !ok {
		c.nLocations++
	}
	locs[location.Opaque] = c.clock.Now()
	if len(locs) > c.limits.MaxLocationsPerDigest {
		for _, l := range oldestTimes(locs, len(locs)-c.limits.MaxLocationsPerDigest) {
			delete(locs, l)
			c.nLocations--
		}
	}
	if c.nLocations > c.limits.MaxLocations {
		c.pruneLocationsLocked()
	}
}

// ForgetKnownLocation implements types.BlobLocationForgetter.
func (c *cache) ForgetKnownLocation(transport string, scope types.BICTransportScope, blobDigest digest.Digest, location types.BICLocationReference) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := locationKey{transport: transport, scope: scope.Opaque, digest: blobDigest}
	locs := c.locations[key]
	if _, ok := locs[location.Opaque]; !ok {
		return
	}
	delete(locs, location.Opaque)
	c.nLocations--
	if len(locs) == 0 {
		delete(c.locations, key)
	}
}

// pruneLocationsLocked drops the oldest locations overall, down to 90% of the cap so that the
// sort is paid once per many insertions.
func (c *cache) pruneLocationsLocked() {
	type entry struct {
		key  locationKey
		loc  string
		seen time.Time
	}
	all := make([]entry, 0, c.nLocations)
	for k, locs := range c.locations {
		for l, t := range locs {
			all = append(all, entry{k, l, t})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seen.Before(all[j].seen) })
	for _, e := range all[:len(all)-pruneTarget(c.limits.MaxLocations)] {
		delete(c.locations[e.key], e.loc)
		if len(c.locations[e.key]) == 0 {
			delete(c.locations, e.key)
		}
		c.nLocations--
	}
}

// CandidateLocations implements types.BlobInfoCache.
func (c *cache) CandidateLocations(transport string, scope types.BICTransportScope, d digest.Digest, canSubstitute bool) []types.BICReplacementCandidate {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.uncompressedLocked(d)
	var others []digest.Digest
	if canSubstitute && u != "" {
		for o := range c.byUncompressed[u] {
			others = append(others, o)
		}
	}
	var res []types.BICReplacementCandidate
	for _, cd := range prioritize.Substitutes(d, u, others, canSubstitute) {
		for loc, seen := range c.locations[locationKey{transport: transport, scope: scope.Opaque, digest: cd}] {
			res = append(res, types.BICReplacementCandidate{
				Digest:         cd,
				CompressorName: c.compressors[cd].value,
				Location:       types.BICLocationReference{Opaque: loc},
				LastSeen:       seen,
			})
		}
	}
	return prioritize.Sort(d, res)
}

// pruneTarget is the size pruning shrinks to: 90% of limit, at least 1.
func pruneTarget(limit int) int {
	return max(limit-limit/10, 1)
}

// oldest returns the n least recently recorded keys of m.
func oldest[K comparable, V any](m map[K]stamped[V], n int) []K {
	times := make(map[K]time.Time, len(m))
	for k, v := range m {
		times[k] = v.seen
	}
	return oldestTimes(times, n)
}

// oldestTimes returns the n keys of m with the earliest times.
func oldestTimes[K comparable](m map[K]time.Time, n int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]].Before(m[keys[j]]) })
	if n > len(keys) {
		n = len(keys)
	}
	return keys[:max(n, 0)]
}
