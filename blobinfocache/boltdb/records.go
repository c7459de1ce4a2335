package boltdb

import (
	"encoding/binary"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"github.com/imgcopy/imgcopy/blobinfocache/internal/prioritize"
	"github.com/imgcopy/imgcopy/types"
)

// File layout. Values that can be pruned start with an 8-byte big-endian UnixNano time.
//
//	uncompressedDigest:   digest → time + uncompressed digest
//	digestByUncompressed: uncompressed digest → {digest → ""}
//	digestCompressor:     digest → time + compressor name
//	knownLocations:       "/"transport → "/"scope → digest → {"/"location → time}
//	meta:                 counter name → uint64 (records in the buckets above, for the caps)
//
// Transport, scope and location keys carry a "/" prefix because bolt refuses empty keys.
var (
	uncompressedBucket   = []byte("uncompressedDigest")
	byUncompressedBucket = []byte("digestByUncompressed")
	compressorBucket     = []byte("digestCompressor")
	locationsBucket      = []byte("knownLocations")
	metaBucket           = []byte("meta")

	pairsCounter       = []byte("pairs")
	compressorsCounter = []byte("compressors")
	locationsCounter   = []byte("locations")
)

// maxKeyLen bounds strings used as keys; longer ones (never real digests or repository paths)
// are not recorded rather than failing the write.
const maxKeyLen = 4096

func strKey(s string) []byte { return append([]byte{'/'}, s...) }

func encodeStamped(t time.Time, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint64(b, uint64(t.UnixNano()))
	return append(b, payload...)
}

// decodeStamped splits a stamped value; ok is false for a damaged value, which then counts as
// absent.
func decodeStamped(v []byte) (t time.Time, payload string, ok bool) {
	if len(v) < 8 {
		return time.Time{}, "", false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))), string(v[8:]), true
}

// UncompressedDigest implements types.BlobInfoCache.
func (c *cache) UncompressedDigest(anyDigest digest.Digest) digest.Digest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fallback != nil {
		return c.fallback.UncompressedDigest(anyDigest)
	}
	var res digest.Digest
	if !c.lookup(func(tx *bolt.Tx, read func(...digest.Digest)) error {
		read(anyDigest)
		res = uncompressedDigest(tx, anyDigest)
		return nil
	}) {
		return c.fallback.UncompressedDigest(anyDigest)
	}
	return res
}

// uncompressedDigest mirrors the memory cache: a recorded pair, else anyDigest itself when it
// is the uncompressed form of something or recorded as uncompressed.
func uncompressedDigest(tx *bolt.Tx, anyDigest digest.Digest) digest.Digest {
	if b := tx.Bucket(uncompressedBucket); b != nil {
		if _, u, ok := decodeStamped(b.Get([]byte(anyDigest))); ok {
			return digest.Digest(u)
		}
	}
	if b := tx.Bucket(byUncompressedBucket); b != nil {
		if sub := b.Bucket([]byte(anyDigest)); sub != nil {
			if k, _ := sub.Cursor().First(); k != nil {
				return anyDigest
			}
		}
	}
	if compressorName(tx, anyDigest) == types.UncompressedCompressorName {
		return anyDigest
	}
	return ""
}

func compressorName(tx *bolt.Tx, d digest.Digest) string {
	if b := tx.Bucket(compressorBucket); b != nil {
		if _, name, ok := decodeStamped(b.Get([]byte(d))); ok {
			return name
		}
	}
	return ""
}

// RecordDigestUncompressedPair implements types.BlobInfoCache.
func (c *cache) RecordDigestUncompressedPair(anyDigest, uncompressed digest.Digest) {
	if anyDigest == "" || uncompressed == "" || len(anyDigest) > maxKeyLen || len(uncompressed) > maxKeyLen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	replay := func(m types.BlobInfoCache) { m.RecordDigestUncompressedPair(anyDigest, uncompressed) }
	if c.fallback != nil {
		replay(c.fallback)
		return
	}
	now := c.clock.Now()
	c.queue(pendingRecord{
		apply:   func(tx *bolt.Tx) error { return recordPair(tx, anyDigest, uncompressed, now, c.maxDigests) },
		replay:  replay,
		digests: []digest.Digest{anyDigest, uncompressed},
	})
}

func recordPair(tx *bolt.Tx, anyDigest, uncompressed digest.Digest, now time.Time, maxDigests int) error {
	b, err := tx.CreateBucketIfNotExists(uncompressedBucket)
	if err != nil {
		return err
	}
	byU, err := tx.CreateBucketIfNotExists(byUncompressedBucket)
	if err != nil {
		return err
	}
	if old := b.Get([]byte(anyDigest)); old != nil {
		if _, oldU, ok := decodeStamped(old); ok && oldU != string(uncompressed) {
			// A digest has exactly one uncompressed form; a different claim replaces the old one.
			if err := unlink(byU, anyDigest, digest.Digest(oldU)); err != nil {
				return err
			}
		}
	} else if err := addCount(tx, pairsCounter, 1); err != nil {
		return err
	}
	if err := b.Put([]byte(anyDigest), encodeStamped(now, string(uncompressed))); err != nil {
		return err
	}
	sub, err := byU.CreateBucketIfNotExists([]byte(uncompressed))
	if err != nil {
		return err
	}
	if err := sub.Put([]byte(anyDigest), []byte{}); err != nil {
		return err
	}
	return prunePairs(tx, maxDigests)
}

// unlink removes anyDigest from the reverse index of uncompressed.
func unlink(byU *bolt.Bucket, anyDigest, uncompressed digest.Digest) error {
	sub := byU.Bucket([]byte(uncompressed))
	if sub == nil {
		return nil
	}
	if err := sub.Delete([]byte(anyDigest)); err != nil {
		return err
	}
	if k, _ := sub.Cursor().First(); k == nil {
		return byU.DeleteBucket([]byte(uncompressed))
	}
	return nil
}

// RecordDigestCompressorName implements types.BlobInfoCache.
func (c *cache) RecordDigestCompressorName(anyDigest digest.Digest, name string) {
	if anyDigest == "" || name == "" || len(anyDigest) > maxKeyLen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	replay := func(m types.BlobInfoCache) { m.RecordDigestCompressorName(anyDigest, name) }
	if c.fallback != nil {
		replay(c.fallback)
		return
	}
	now := c.clock.Now()
	c.queue(pendingRecord{
		apply: func(tx *bolt.Tx) error {
			return putFlat(tx, compressorBucket, compressorsCounter, []byte(anyDigest), name, now, c.maxDigests)
		},
		replay:  replay,
		digests: []digest.Digest{anyDigest},
	})
}

// RecordKnownLocation implements types.BlobInfoCache.
func (c *cache) RecordKnownLocation(transport string, scope types.BICTransportScope, blobDigest digest.Digest, location types.BICLocationReference) {
	if blobDigest == "" || len(blobDigest) > maxKeyLen || len(transport) > maxKeyLen ||
		len(scope.Opaque) > maxKeyLen || len(location.Opaque) > maxKeyLen {
		if blobDigest != "" {
			logrus.WithField("digest", blobDigest).Debug("blob location too long to cache")
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	replay := func(m types.BlobInfoCache) { m.RecordKnownLocation(transport, scope, blobDigest, location) }
	if c.fallback != nil {
		replay(c.fallback)
		return
	}
	now := c.clock.Now()
	c.queue(pendingRecord{
		apply: func(tx *bolt.Tx) error {
			return c.recordLocation(tx, transport, scope, blobDigest, location, now)
		},
		replay:  replay,
		digests: []digest.Digest{blobDigest},
	})
}

func (c *cache) recordLocation(tx *bolt.Tx, transport string, scope types.BICTransportScope, d digest.Digest, location types.BICLocationReference, now time.Time) error {
	b, err := tx.CreateBucketIfNotExists(locationsBucket)
	if err != nil {
		return err
	}
	for _, k := range [][]byte{strKey(transport), strKey(scope.Opaque), []byte(d)} {
		if b, err = b.CreateBucketIfNotExists(k); err != nil {
			return err
		}
	}
	key := strKey(location.Opaque)
	if b.Get(key) == nil {
		if err := addCount(tx, locationsCounter, 1); err != nil {
			return err
		}
	}
	if err := b.Put(key, encodeStamped(now, "")); err != nil {
		return err
	}
	removed, _, err := pruneFlat(b, c.maxLocationsPerDigest, nil)
	if err != nil {
		return err
	}
	if err := addCount(tx, locationsCounter, -removed); err != nil {
		return err
	}
	return pruneLocations(tx, c.maxLocations)
}

// ForgetKnownLocation implements types.BlobLocationForgetter.
func (c *cache) ForgetKnownLocation(transport string, scope types.BICTransportScope, blobDigest digest.Digest, location types.BICLocationReference) {
	if blobDigest == "" || len(blobDigest) > maxKeyLen || len(transport) > maxKeyLen ||
		len(scope.Opaque) > maxKeyLen || len(location.Opaque) > maxKeyLen {
		return // never recorded
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	replay := func(m types.BlobInfoCache) {
		if f, ok := m.(types.BlobLocationForgetter); ok {
			f.ForgetKnownLocation(transport, scope, blobDigest, location)
		}
	}
	if c.fallback != nil {
		replay(c.fallback)
		return
	}
	c.queue(pendingRecord{
		apply: func(tx *bolt.Tx) error {
			return forgetLocation(tx, transport, scope, blobDigest, location)
		},
		replay:  replay,
		digests: []digest.Digest{blobDigest},
	})
}

// forgetLocation deletes one location record, if there is one, and counts it.
func forgetLocation(tx *bolt.Tx, transport string, scope types.BICTransportScope, d digest.Digest, location types.BICLocationReference) error {
	root := tx.Bucket(locationsBucket)
	if root == nil {
		return nil
	}
	r := locationRecord{transport: strKey(transport), scope: strKey(scope.Opaque), digest: []byte(d), location: strKey(location.Opaque)}
	if db := nested(root, r.transport, r.scope, r.digest); db == nil || db.Get(r.location) == nil {
		return nil
	}
	if err := deleteLocation(root, r); err != nil {
		return err
	}
	return addCount(tx, locationsCounter, -1)
}

// CandidateLocations implements types.BlobInfoCache.
func (c *cache) CandidateLocations(transport string, scope types.BICTransportScope, d digest.Digest, canSubstitute bool) []types.BICReplacementCandidate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fallback != nil {
		return c.fallback.CandidateLocations(transport, scope, d, canSubstitute)
	}
	var res []types.BICReplacementCandidate
	if !c.lookup(func(tx *bolt.Tx, read func(...digest.Digest)) error {
		res = candidates(tx, transport, scope, d, canSubstitute, read)
		return nil
	}) {
		return c.fallback.CandidateLocations(transport, scope, d, canSubstitute)
	}
	return prioritize.Sort(d, res)
}

// candidates reads the records of d, of its uncompressed digest and of the digests sharing it
// (those it passes to read).
func candidates(tx *bolt.Tx, transport string, scope types.BICTransportScope, d digest.Digest, canSubstitute bool, read func(...digest.Digest)) []types.BICReplacementCandidate {
	read(d)
	u := uncompressedDigest(tx, d)
	var others []digest.Digest
	if canSubstitute && u != "" {
		read(u)
		if sub := nested(tx.Bucket(byUncompressedBucket), []byte(u)); sub != nil {
			_ = sub.ForEach(func(k, _ []byte) error {
				others = append(others, digest.Digest(k))
				return nil
			})
		}
		read(others...)
	}
	scopeBucket := nested(tx.Bucket(locationsBucket), strKey(transport), strKey(scope.Opaque))
	var res []types.BICReplacementCandidate
	for _, cd := range prioritize.Substitutes(d, u, others, canSubstitute) {
		locs := nested(scopeBucket, []byte(cd))
		if locs == nil {
			continue
		}
		name := compressorName(tx, cd)
		_ = locs.ForEach(func(k, v []byte) error {
			if t, _, ok := decodeStamped(v); ok && len(k) > 0 {
				res = append(res, types.BICReplacementCandidate{
					Digest:         cd,
					CompressorName: name,
					Location:       types.BICLocationReference{Opaque: string(k[1:])},
					LastSeen:       t,
				})
			}
			return nil
		})
	}
	return res
}

// nested follows a path of sub-buckets, nil if any is missing.
func nested(b *bolt.Bucket, path ...[]byte) *bolt.Bucket {
	for _, k := range path {
		if b == nil {
			return nil
		}
		b = b.Bucket(k)
	}
	return b
}
