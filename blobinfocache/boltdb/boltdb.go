package boltdb

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"github.com/imgcopy/imgcopy/blobinfocache/internal/clock"
	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/types"
)

// Default bounds and lock timeout.
const (
	// DefaultMaxLocationsPerDigest bounds the locations kept per transport, scope and digest.
	DefaultMaxLocationsPerDigest = 16
	// DefaultMaxLocations bounds the locations kept in total.
	DefaultMaxLocations = 50000
	// DefaultMaxDigests bounds the digest→uncompressed and digest→compressor records, each.
	DefaultMaxDigests = 50000
	// DefaultLockTimeout is how long an operation waits for another process's lock on the file
	// before giving up on the file.
	DefaultLockTimeout = time.Second
	// DefaultMaxPending is how many records wait in a handle before they are stored.
	DefaultMaxPending = 64
	// DefaultFlushDelay is how long the first waiting record waits at most before it is stored.
	DefaultFlushDelay = time.Second
)

// errLockTimeout is returned when another process keeps the file locked for too long.
var errLockTimeout = errors.New("timed out waiting for the cache file lock")

// errNoFile means a read found no file: nothing is known yet, and nothing is wrong.
var errNoFile = errors.New("cache file does not exist")

// cache implements types.BlobInfoCache on a bolt file.
type cache struct {
	path string

	// Bounds and lock timeout; fixed after Open (tests lower them).
	maxLocationsPerDigest int
	maxLocations          int
	maxDigests            int
	lockTimeout           time.Duration
	maxPending            int
	flushDelay            time.Duration
	afterFunc             func(time.Duration, func()) (stop func() bool) // time.AfterFunc; tests fire it themselves

	// mu serializes this handle's operations, so concurrent callers in one process queue here
	// instead of timing out on the file lock, and guards the fields below.
	mu        sync.Mutex
	clock     clock.Clock
	validated bool                // the file passed validateFile once
	fallback  types.BlobInfoCache // non-nil once the file was given up
	pending   []pendingRecord     // records not stored yet, oldest first
	stopTimer func() bool         // cancels the pending flush after flushDelay; nil when none is set
}

// pendingRecord is a record waiting to be stored.
type pendingRecord struct {
	apply  func(tx *bolt.Tx) error   // writes it into the file
	replay func(types.BlobInfoCache) // makes it again in the in-memory fallback
	// digests are those under which apply writes (see lookup): a blob's digest for its
	// location or compressor, both digests of a pair, a manifest mapping's source digest.
	digests []digest.Digest
}

var (
	_ types.BlobInfoCache         = (*cache)(nil)
	_ types.BlobInfoCacheFlusher  = (*cache)(nil)
	_ types.BlobLocationForgetter = (*cache)(nil)
)

// Open returns a cache stored in the bolt file at path. It does no I/O: the file (and its
// directory) is created on the first write, and problems surface as a warning then.
func Open(path string) types.BlobInfoCache {
	return &cache{
		path:                  path,
		maxLocationsPerDigest: DefaultMaxLocationsPerDigest,
		maxLocations:          DefaultMaxLocations,
		maxDigests:            DefaultMaxDigests,
		lockTimeout:           DefaultLockTimeout,
		maxPending:            DefaultMaxPending,
		flushDelay:            DefaultFlushDelay,
		afterFunc:             func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
	}
}

// Flush implements types.BlobInfoCacheFlusher: it stores every waiting record now. On an
// error the records live on in the in-memory fallback.
func (c *cache) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

// flushLocked stores c.pending in one transaction.
func (c *cache) flushLocked() error {
	c.cancelTimer()
	if len(c.pending) == 0 || c.fallback != nil {
		return nil
	}
	err := c.withDB(false, func(db *bolt.DB) error {
		return db.Update(c.applyPending)
	})
	if err != nil {
		c.check(err) // replays c.pending into the fallback
		return err
	}
	c.pending = nil
	return nil
}

func (c *cache) applyPending(tx *bolt.Tx) error {
	for _, p := range c.pending {
		if err := p.apply(tx); err != nil {
			return err
		}
	}
	return nil
}

// queue adds a record to c.pending and stores the batch when it is full, or arranges for it
// to be stored after c.flushDelay.
func (c *cache) queue(p pendingRecord) {
	c.pending = append(c.pending, p)
	if len(c.pending) >= c.maxPending {
		_ = c.flushLocked() // a failure was reported by check and the records moved to the fallback
		return
	}
	if c.stopTimer == nil {
		c.stopTimer = c.afterFunc(c.flushDelay, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			_ = c.flushLocked()
		})
	}
}

func (c *cache) cancelTimer() {
	if c.stopTimer != nil {
		c.stopTimer()
		c.stopTimer = nil
	}
}

// DefaultPath is $XDG_CACHE_HOME/imgcopy/blob-info-cache.db, or ~/.cache/imgcopy/… when
// XDG_CACHE_HOME is unset.
func DefaultPath() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errors.Wrap(err, "finding the blob-info cache directory")
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "imgcopy", "blob-info-cache.db"), nil
}

// view runs fn on the file with the waiting records applied. It reports false when the file
// had to be given up; the caller then asks c.fallback. Without waiting records it is a
// read-only transaction, and a missing file runs nothing and reports true; with them, it is a
// read-write transaction that applies them, runs fn and is rolled back (no write, no fsync).
func (c *cache) view(fn func(tx *bolt.Tx) error) bool {
	if len(c.pending) > 0 {
		return c.check(c.withDB(false, func(db *bolt.DB) error {
			tx, err := db.Begin(true)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			if err := c.applyPending(tx); err != nil {
				return err
			}
			return fn(tx)
		}))
	}
	err := c.withDB(true, func(db *bolt.DB) error { return db.View(fn) })
	if errors.Is(err, errNoFile) {
		return true
	}
	return c.check(err)
}

// lookup is view for a query that tells, through read, the digests whose records it reads.
// While records wait to be stored, it first runs fn in a read-only transaction on the file
// alone; when no waiting record is stored under one of the digests fn read, they could not
// change its answer, and that answer stands. Only otherwise does fn run again in view, with
// the waiting records applied in a read-write transaction: that took the file's exclusive
// lock, loaded its freelist and applied every waiting record again for each query, 15 % of
// the CPU of pushing 60 blobs (one query per blob, issue 18). (Storing them could also prune
// old records; a query answered from the file alone may still list those.)
func (c *cache) lookup(fn func(tx *bolt.Tx, read func(...digest.Digest)) error) bool {
	ignore := func(...digest.Digest) {}
	if len(c.pending) > 0 {
		var seen []digest.Digest
		read := func(ds ...digest.Digest) { seen = append(seen, ds...) }
		err := c.withDB(true, func(db *bolt.DB) error {
			return db.View(func(tx *bolt.Tx) error { return fn(tx, read) })
		})
		if err == nil && !c.pendingConcerns(seen) {
			return true
		}
		if err != nil && !errors.Is(err, errNoFile) {
			return c.check(err)
		}
	}
	return c.view(func(tx *bolt.Tx) error { return fn(tx, ignore) })
}

// pendingConcerns reports whether a waiting record is stored under one of ds.
func (c *cache) pendingConcerns(ds []digest.Digest) bool {
	for _, p := range c.pending {
		for _, pd := range p.digests {
			if slices.Contains(ds, pd) {
				return true
			}
		}
	}
	return false
}

// check switches to the in-memory fallback on err, warning once, and moves the waiting
// records there.
func (c *cache) check(err error) bool {
	if err == nil {
		return true
	}
	log := logrus.WithFields(logrus.Fields{"path": c.path, "error": err.Error()})
	if errors.Is(err, bolt.ErrTimeout) || errors.Is(err, errLockTimeout) {
		// Other processes sharing the file keep it busy: nothing is wrong with it.
		log.Debug("blob-info cache file locked by other processes, continuing with an in-memory cache")
	} else {
		log.Warn("blob-info cache file unusable, continuing with an in-memory cache")
	}
	c.fallback = memory.New()
	for _, p := range c.pending {
		p.replay(c.fallback)
	}
	c.pending = nil
	c.cancelTimer()
	return false
}

// withDB opens the file, runs fn and closes the file again. A panic or memory fault inside
// bbolt (it has both on some kinds of corruption) becomes an error.
func (c *cache) withDB(readOnly bool, fn func(db *bolt.DB) error) (err error) {
	if readOnly {
		st, err := os.Stat(c.path)
		// A zero-length file is one another process is creating right now.
		if errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0) {
			return errNoFile
		}
	} else if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return errors.Wrap(err, "creating the cache directory")
	}
	if !c.validated {
		if err := c.validate(); err != nil {
			return err
		}
	}
	// bbolt reads the file through mmap: a corrupt page reference past the end of the file
	// raises SIGBUS, which SetPanicOnFault turns into a panic we can recover from. bbolt then
	// leaks that file handle, which is bounded because the file is never opened again.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("bbolt panicked: %v", r)
		}
		if db != nil {
			closeQuietly(db)
		}
	}()
	db, err = bolt.Open(c.path, 0o600, &bolt.Options{Timeout: c.lockTimeout, ReadOnly: readOnly})
	if err != nil {
		return errors.Wrap(err, "opening the cache file")
	}
	return fn(db)
}

// validate runs validateFile once per handle, before bbolt first reads the file. A missing or
// empty file is valid: bbolt initializes it.
func (c *cache) validate() error {
	err := checkLocked(c.path, c.lockTimeout, func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		return validateFile(b)
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	c.validated = true
	return nil
}

// closeQuietly closes db; a failure to close after a finished transaction loses nothing.
func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	if err := db.Close(); err != nil {
		logrus.WithError(err).Debug("closing blob-info cache file")
	}
}
