package boltdb

import (
	"bytes"
	"encoding/binary"
	"sort"
	"time"

	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// pruneTarget is the size a full store shrinks to: 90% of limit (at least 1), so that the
// full scan a prune needs is paid once per many insertions.
func pruneTarget(limit int) int {
	return max(limit-limit/10, 1)
}

func getCount(tx *bolt.Tx, name []byte) int {
	b := tx.Bucket(metaBucket)
	if b == nil {
		return 0
	}
	v := b.Get(name)
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

func setCount(tx *bolt.Tx, name []byte, n int) error {
	b, err := tx.CreateBucketIfNotExists(metaBucket)
	if err != nil {
		return err
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(max(n, 0)))
	return b.Put(name, v)
}

func addCount(tx *bolt.Tx, name []byte, delta int) error {
	if delta == 0 {
		return nil
	}
	return setCount(tx, name, getCount(tx, name)+delta)
}

// countKeys counts the plain (non-bucket) keys of b.
func countKeys(b *bolt.Bucket) int {
	n := 0
	_ = b.ForEach(func(_, v []byte) error {
		if v != nil {
			n++
		}
		return nil
	})
	return n
}

// stampedKey is a key of a flat bucket with its record time.
type stampedKey struct {
	key   []byte
	value []byte
	seen  time.Time
}

// pruneFlat deletes the oldest stamped records of the flat bucket b (damaged records count as
// oldest) until at most keep remain, calling onDelete for each first. It counts the records
// itself rather than trusting a counter from the file. It returns how many it deleted and how
// many records b held before.
func pruneFlat(b *bolt.Bucket, keep int, onDelete func(k, v []byte) error) (removed, total int, err error) {
	var all []stampedKey
	_ = b.ForEach(func(k, v []byte) error {
		if v != nil {
			t, _, _ := decodeStamped(v)
			all = append(all, stampedKey{bytes.Clone(k), bytes.Clone(v), t})
		}
		return nil
	})
	n := len(all) - keep
	if n <= 0 {
		return 0, len(all), nil
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seen.Before(all[j].seen) })
	for _, e := range all[:n] {
		if onDelete != nil {
			if err := onDelete(e.key, e.value); err != nil {
				return removed, len(all), err
			}
		}
		if err := b.Delete(e.key); err != nil {
			return removed, len(all), err
		}
		removed++
	}
	return removed, len(all), nil
}

// prunePairs shrinks the digest→uncompressed records once there are more than limit.
func prunePairs(tx *bolt.Tx, limit int) error {
	if getCount(tx, pairsCounter) <= limit {
		return nil
	}
	byU := tx.Bucket(byUncompressedBucket)
	removed, total, err := pruneFlat(tx.Bucket(uncompressedBucket), pruneTarget(limit), func(k, v []byte) error {
		if _, u, ok := decodeStamped(v); ok && byU != nil {
			return unlink(byU, digest.Digest(k), digest.Digest(u))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return setCount(tx, pairsCounter, total-removed) // also repairs a counter that drifted
}

// putFlat stores payload under key in the flat bucket, stamped with now, counting a new key in
// counter, and shrinks the bucket once it holds more than limit records (the digest→compressor
// records, the manifest mappings).
func putFlat(tx *bolt.Tx, bucket, counter, key []byte, payload string, now time.Time, limit int) error {
	b, err := tx.CreateBucketIfNotExists(bucket)
	if err != nil {
		return err
	}
	if b.Get(key) == nil {
		if err := addCount(tx, counter, 1); err != nil {
			return err
		}
	}
	if err := b.Put(key, encodeStamped(now, payload)); err != nil {
		return err
	}
	if getCount(tx, counter) <= limit {
		return nil
	}
	removed, total, err := pruneFlat(b, pruneTarget(limit), nil)
	if err != nil {
		return err
	}
	return setCount(tx, counter, total-removed) // also repairs a counter that drifted
}

// locationRecord is one stored location with the path of buckets holding it.
type locationRecord struct {
	transport, scope, digest, location []byte
	seen                               time.Time
}

// pruneLocations drops the oldest locations overall once there are more than limit.
func pruneLocations(tx *bolt.Tx, limit int) error {
	if getCount(tx, locationsCounter) <= limit {
		return nil
	}
	root := tx.Bucket(locationsBucket)
	if root == nil {
		return setCount(tx, locationsCounter, 0)
	}
	all := collectLocations(root)
	sort.Slice(all, func(i, j int) bool { return all[i].seen.Before(all[j].seen) })
	n := max(len(all)-pruneTarget(limit), 0)
	for _, r := range all[:n] {
		if err := deleteLocation(root, r); err != nil {
			return err
		}
	}
	return setCount(tx, locationsCounter, len(all)-n)
}

// collectLocations lists every location under root (transport → scope → digest → location).
func collectLocations(root *bolt.Bucket) []locationRecord {
	var all []locationRecord
	eachSub(root, func(tk []byte, tb *bolt.Bucket) {
		eachSub(tb, func(sk []byte, sb *bolt.Bucket) {
			eachSub(sb, func(dk []byte, db *bolt.Bucket) {
				_ = db.ForEach(func(lk, v []byte) error {
					if v != nil {
						t, _, _ := decodeStamped(v)
						all = append(all, locationRecord{tk, sk, dk, bytes.Clone(lk), t})
					}
					return nil
				})
			})
		})
	})
	return all
}

// eachSub calls fn for every sub-bucket of b, with a copy of its key.
func eachSub(b *bolt.Bucket, fn func(k []byte, sub *bolt.Bucket)) {
	_ = b.ForEach(func(k, v []byte) error {
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				fn(bytes.Clone(k), sub)
			}
		}
		return nil
	})
}

// deleteLocation removes one location and the digest bucket it leaves empty.
func deleteLocation(root *bolt.Bucket, r locationRecord) error {
	sb := nested(root, r.transport, r.scope)
	db := nested(sb, r.digest)
	if db == nil {
		return nil
	}
	if err := db.Delete(r.location); err != nil {
		return err
	}
	if k, _ := db.Cursor().First(); k == nil {
		return sb.DeleteBucket(r.digest)
	}
	return nil
}
