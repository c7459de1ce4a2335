package boltdb

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	bolt "go.etcd.io/bbolt"

	"github.com/imgcopy/imgcopy/blobinfocache/internal/suite"
	"github.com/imgcopy/imgcopy/types"
)

var scope = types.BICTransportScope{Opaque: "reg.example:5000"}

// mustFlush stores the records c still holds.
func mustFlush(t testing.TB, c types.BlobInfoCache) {
	t.Helper()
	if err := c.(types.BlobInfoCacheFlusher).Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func newTestCache(t *testing.T) *cache {
	t.Helper()
	c := Open(filepath.Join(t.TempDir(), "sub", "cache.db")).(*cache)
	dropPendingAtCleanup(t, c)
	return c
}

// dropPendingAtCleanup cancels c's delayed flush when t ends: fired after t's temporary
// directory was removed, it would create the directory again and leave it behind in $TMPDIR.
func dropPendingAtCleanup(t testing.TB, c *cache) {
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cancelTimer()
	})
}

// split writes through one handle and reads through another on the same file, so the suite
// also checks that everything recorded is really in the file.
type split struct {
	w, r types.BlobInfoCache
}

var (
	_ types.BlobInfoCache         = split{}
	_ types.BlobLocationForgetter = split{}
)

func (s split) ForgetKnownLocation(tr string, sc types.BICTransportScope, d digest.Digest, l types.BICLocationReference) {
	s.w.(types.BlobLocationForgetter).ForgetKnownLocation(tr, sc, d, l)
}

// flushed stores what the writing handle still holds, so that the reading handle can see it.
func (s split) flushed() types.BlobInfoCache {
	if err := s.w.(types.BlobInfoCacheFlusher).Flush(); err != nil {
		panic(err) // the suite has no *testing.T here; TestSuite also checks for fallbacks
	}
	return s.r
}

func (s split) UncompressedDigest(d digest.Digest) digest.Digest {
	return s.flushed().UncompressedDigest(d)
}
func (s split) RecordDigestUncompressedPair(a, u digest.Digest) {
	s.w.RecordDigestUncompressedPair(a, u)
}
func (s split) RecordDigestCompressorName(d digest.Digest, n string) {
	s.w.RecordDigestCompressorName(d, n)
}
func (s split) RecordKnownLocation(tr string, sc types.BICTransportScope, d digest.Digest, l types.BICLocationReference) {
	s.w.RecordKnownLocation(tr, sc, d, l)
}
func (s split) RecordManifestMapping(src digest.Digest, variant string, written digest.Digest) {
	s.w.(types.ManifestMappingCache).RecordManifestMapping(src, variant, written)
}
func (s split) ManifestMapping(src digest.Digest, variant string) digest.Digest {
	return s.flushed().(types.ManifestMappingCache).ManifestMapping(src, variant)
}
func (s split) CandidateLocations(tr string, sc types.BICTransportScope, d digest.Digest, sub bool) []types.BICReplacementCandidate {
	return s.flushed().CandidateLocations(tr, sc, d, sub)
}

func TestSuite(t *testing.T) {
	t.Parallel()
	handles := map[*cache]bool{}
	var mu sync.Mutex
	track := func(c *cache) *cache {
		mu.Lock()
		defer mu.Unlock()
		handles[c] = true
		return c
	}
	t.Run("one handle", func(t *testing.T) {
		suite.Run(t, func(t *testing.T) types.BlobInfoCache { return track(newTestCache(t)) })
	})
	t.Run("write and read through different handles", func(t *testing.T) {
		suite.Run(t, func(t *testing.T) types.BlobInfoCache {
			w := track(newTestCache(t))
			return split{w: w, r: track(Open(w.path).(*cache))}
		})
	})
	for c := range handles {
		if c.fallback != nil {
			t.Errorf("handle on %s fell back to memory", c.path)
		}
	}
}

func TestReadDoesNotCreateFile(t *testing.T) {
	t.Parallel()
	c := newTestCache(t)
	if got := c.CandidateLocations("docker", scope, digest.FromString("x"), true); len(got) != 0 {
		t.Fatalf("got %+v", got)
	}
	if c.UncompressedDigest(digest.FromString("x")) != "" {
		t.Fatal("unexpected uncompressed digest")
	}
	if _, err := os.Stat(c.path); !os.IsNotExist(err) {
		t.Fatalf("read created the file: %v", err)
	}
	if c.fallback != nil {
		t.Fatal("missing file caused a fallback")
	}
}

func TestPersistenceAcrossReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cache.db")
	d, u := digest.FromString("gz"), digest.FromString("raw")
	first := Open(path)
	first.RecordDigestUncompressedPair(d, u)
	first.RecordDigestCompressorName(d, types.GzipCompressorName)
	first.RecordKnownLocation("docker", scope, d, types.BICLocationReference{Opaque: "ns/app"})
	mustFlush(t, first)

	again := Open(path)
	if got := again.UncompressedDigest(d); got != u {
		t.Fatalf("UncompressedDigest = %q", got)
	}
	got := again.CandidateLocations("docker", scope, u, true)
	if len(got) != 1 || got[0].Digest != d || got[0].Location.Opaque != "ns/app" || got[0].CompressorName != types.GzipCompressorName {
		t.Fatalf("candidates %+v", got)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v %v", st, err)
	}
}

func TestConcurrentHandles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cache.db")
	a, b := Open(path).(*cache), Open(path).(*cache)
	for _, c := range []*cache{a, b} {
		c.lockTimeout = time.Minute     // contention on a loaded machine must not look like a stuck lock
		c.flushDelay = time.Millisecond // real timers flush while the goroutines record and read
		c.maxPending = 7
	}
	const per = 15
	var wg sync.WaitGroup
	for i, c := range []*cache{a, b} {
		for g := range 2 { // two goroutines per handle: in-process callers queue on the handle
			wg.Go(func() {
				for j := range per {
					d := digest.FromString(fmt.Sprintf("%d-%d-%d", i, g, j))
					c.RecordDigestUncompressedPair(d, digest.FromString("shared"))
					c.RecordKnownLocation("docker", scope, d, types.BICLocationReference{Opaque: fmt.Sprintf("h%d", i)})
					_ = c.CandidateLocations("docker", scope, d, true)
				}
			})
		}
	}
	wg.Wait()
	mustFlush(t, a)
	mustFlush(t, b)
	for name, c := range map[string]*cache{"a": a, "b": b} {
		if c.fallback != nil {
			t.Fatalf("handle %s fell back to memory", name)
		}
		for i := range 2 {
			for g := range 2 {
				for j := range per {
					d := digest.FromString(fmt.Sprintf("%d-%d-%d", i, g, j))
					if got := c.UncompressedDigest(d); got != digest.FromString("shared") {
						t.Fatalf("handle %s misses %s: %q", name, d, got)
					}
				}
			}
		}
	}
}

// captureWarnings records the standard logger's warnings; tests using it must not be parallel.
func captureWarnings(t *testing.T) *logtest.Hook {
	t.Helper()
	hook := logtest.NewGlobal()
	t.Cleanup(func() { logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{}) })
	return hook
}

func warnings(h *logtest.Hook) int {
	n := 0
	for _, e := range h.AllEntries() {
		if e.Level == logrus.WarnLevel {
			n++
		}
	}
	return n
}

// exerciseFallback records and reads back through c, which must work from memory.
func exerciseFallback(t *testing.T, c types.BlobInfoCache) {
	t.Helper()
	d, u := digest.FromString("gz"), digest.FromString("raw")
	_ = c.UncompressedDigest(d)
	c.RecordDigestUncompressedPair(d, u)
	c.RecordDigestCompressorName(d, types.GzipCompressorName)
	c.RecordKnownLocation("docker", scope, d, types.BICLocationReference{Opaque: "ns/app"})
	if got := c.UncompressedDigest(d); got != u {
		t.Fatalf("UncompressedDigest = %q", got)
	}
	if got := c.CandidateLocations("docker", scope, u, true); len(got) != 1 || got[0].Digest != d {
		t.Fatalf("candidates %+v", got)
	}
}

func TestFallback(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{
			name: "corrupt file",
			setup: func(t *testing.T, path string) {
				writeGarbage(t, path)
			},
		},
		{
			name: "zeroed meta pages",
			setup: func(t *testing.T, path string) {
				c := Open(path)
				c.RecordDigestCompressorName(digest.FromString("x"), "gzip")
				mustFlush(t, c)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				copy(b, make([]byte, 8192)) // both meta pages (4 KiB pages)
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "file locked by another process",
			setup: func(t *testing.T, path string) {
				db, err := bolt.Open(path, 0o600, nil) // holds the exclusive lock until cleanup
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
			},
		},
		{
			name: "directory cannot be created",
			setup: func(t *testing.T, path string) {
				if err := os.WriteFile(filepath.Dir(path), []byte("a file, not a directory"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			path := filepath.Join(dir, "cache.db")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.name == "directory cannot be created" {
				if err := os.Remove(dir); err != nil {
					t.Fatal(err)
				}
			}
			tc.setup(t, path)
			before, _ := os.ReadFile(path)
			hook := captureWarnings(t)

			c := Open(path).(*cache)
			c.lockTimeout = 50 * time.Millisecond
			exerciseFallback(t, c)
			exerciseFallback(t, c)

			if c.fallback == nil {
				t.Fatal("no fallback to memory")
			}
			want := 1
			if tc.name == "file locked by another process" {
				want = 0 // other processes at work are no problem: a debug line says so
			}
			if n := warnings(hook); n != want {
				t.Fatalf("%d warnings, want exactly %d", n, want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("the unusable file was modified")
			}
		})
	}
}

func writeGarbage(t *testing.T, path string) {
	t.Helper()
	b := bytes.Repeat([]byte("this is not a bolt database "), 1000)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPruning(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tune   func(c *cache)
		record func(c *cache)
		check  func(t *testing.T, c *cache, tx *bolt.Tx)
	}{
		{
			name: "per digest keeps the newest",
			tune: func(c *cache) { c.maxLocationsPerDigest = 3 },
			record: func(c *cache) {
				for i := range 6 {
					c.RecordKnownLocation("docker", scope, dg(0), loc(i))
				}
			},
			check: func(t *testing.T, c *cache, tx *bolt.Tx) {
				got := candidates(tx, "docker", scope, dg(0), false, func(...digest.Digest) {})
				if len(got) != 3 {
					t.Fatalf("got %+v", got)
				}
				for _, g := range got {
					if g.Location == loc(0) || g.Location == loc(1) || g.Location == loc(2) {
						t.Fatalf("old location %s kept", g.Location.Opaque)
					}
				}
				if n := getCount(tx, locationsCounter); n != 3 {
					t.Fatalf("counter %d", n)
				}
			},
		},
		{
			name: "global location cap drops the oldest",
			tune: func(c *cache) { c.maxLocations = 10 },
			record: func(c *cache) {
				for i := range 25 {
					c.RecordKnownLocation(fmt.Sprintf("t%d", i%2), scope, dg(i), loc(i))
				}
			},
			check: func(t *testing.T, c *cache, tx *bolt.Tx) {
				all := collectLocations(tx.Bucket(locationsBucket))
				if len(all) > 10 || len(all) != getCount(tx, locationsCounter) {
					t.Fatalf("%d locations, counter %d", len(all), getCount(tx, locationsCounter))
				}
				if len(candidates(tx, "t0", scope, dg(24), false, func(...digest.Digest) {})) != 1 || len(candidates(tx, "t0", scope, dg(0), false, func(...digest.Digest) {})) != 0 {
					t.Fatal("wrong locations pruned")
				}
			},
		},
		{
			name: "digest records bounded",
			tune: func(c *cache) { c.maxDigests = 10 },
			record: func(c *cache) {
				for i := range 25 {
					c.RecordDigestUncompressedPair(dg(i), dg(1000+i%3))
					c.RecordDigestCompressorName(dg(i), types.GzipCompressorName)
				}
			},
			check: func(t *testing.T, c *cache, tx *bolt.Tx) {
				pairs, comps := countKeys(tx.Bucket(uncompressedBucket)), countKeys(tx.Bucket(compressorBucket))
				if pairs > 10 || comps > 10 || pairs != getCount(tx, pairsCounter) || comps != getCount(tx, compressorsCounter) {
					t.Fatalf("%d pairs, %d compressors, counters %d %d", pairs, comps, getCount(tx, pairsCounter), getCount(tx, compressorsCounter))
				}
				if uncompressedDigest(tx, dg(24)) != dg(1000+24%3) || uncompressedDigest(tx, dg(0)) != "" {
					t.Fatal("wrong records pruned")
				}
				reverse := 0
				eachSub(tx.Bucket(byUncompressedBucket), func(_ []byte, b *bolt.Bucket) { reverse += countKeys(b) })
				if reverse != pairs {
					t.Fatalf("reverse index has %d entries, forward %d", reverse, pairs)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCache(t)
			tc.tune(c)
			tc.record(c)
			mustFlush(t, c)
			if c.fallback != nil {
				t.Fatal("fell back to memory")
			}
			db, err := bolt.Open(c.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.View(func(tx *bolt.Tx) error { tc.check(t, c, tx); return nil }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaultPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	if p, err := DefaultPath(); err != nil || p != filepath.Join(home, ".cache", "imgcopy", "blob-info-cache.db") {
		t.Fatalf("got %q, %v", p, err)
	}
	t.Setenv("XDG_CACHE_HOME", "/xdg/cache")
	if p, err := DefaultPath(); err != nil || p != "/xdg/cache/imgcopy/blob-info-cache.db" {
		t.Fatalf("got %q, %v", p, err)
	}
}

func dg(i int) digest.Digest { return digest.FromString(fmt.Sprint(i)) }

func loc(i int) types.BICLocationReference {
	return types.BICLocationReference{Opaque: fmt.Sprintf("repo%d", i)}
}
