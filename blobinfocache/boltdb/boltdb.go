// Package boltdb is a persistent types.BlobInfoCache in a go.etcd.io/bbolt file, the CLI
// default. Like containers/image it opens the file for each operation and closes it right
// after, so several processes can share one file; a file that cannot be used (corrupt, locked
// for too long, unwritable) is reported once with a warning and the cache carries on in memory.
package boltdb

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"github.com/imgcopy/imgcopy/blobinfocache/internal/clock"
	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/internal/iolimits"
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
)

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

	// mu serializes this handle's operations, so concurrent callers in one process queue here
	// instead of timing out on the file lock, and guards the fields below.
	mu        sync.Mutex
	clock     clock.Clock
	validated bool                // the file passed validateFile once
	fallback  types.BlobInfoCache // non-nil once the file was given up
}

var _ types.BlobInfoCache = (*cache)(nil)

// Open returns a cache stored in the bolt file at path. It does no I/O: the file (and its
// directory) is created on the first write, and problems surface as a warning then.
func Open(path string) types.BlobInfoCache {
	return &cache{
		path:                  path,
		maxLocationsPerDigest: DefaultMaxLocationsPerDigest,
		maxLocations:          DefaultMaxLocations,
		maxDigests:            DefaultMaxDigests,
		lockTimeout:           DefaultLockTimeout,
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

// view runs fn in a read-only transaction. It reports false when the file had to be given up;
// the caller then asks c.fallback. A missing file runs nothing and reports true.
func (c *cache) view(fn func(tx *bolt.Tx) error) bool {
	err := c.withDB(true, func(db *bolt.DB) error { return db.View(fn) })
	if errors.Is(err, errNoFile) {
		return true
	}
	return c.check(err)
}

// update runs fn in a read-write transaction, like view.
func (c *cache) update(fn func(tx *bolt.Tx) error) bool {
	return c.check(c.withDB(false, func(db *bolt.DB) error { return db.Update(fn) }))
}

// check switches to the in-memory fallback on err, warning once.
func (c *cache) check(err error) bool {
	if err == nil {
		return true
	}
	logrus.WithFields(logrus.Fields{"path": c.path, "error": err.Error()}).
		Warn("blob-info cache file unusable, continuing with an in-memory cache")
	c.fallback = memory.New()
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
	b, err := readLocked(c.path, c.lockTimeout)
	if errors.Is(err, os.ErrNotExist) {
		c.validated = true
		return nil
	}
	if err != nil {
		return err
	}
	if len(b) > 0 {
		if err := validateFile(b); err != nil {
			return err
		}
	}
	c.validated = true
	return nil
}

// readCappedFile reads f whole, refusing files larger than a cache file ever grows to.
func readCappedFile(f *os.File) ([]byte, error) {
	b, err := iolimits.ReadAtMost(f, maxValidateLen)
	if errors.Is(err, iolimits.ErrTooLarge) {
		return nil, errors.Wrap(errCorrupt, "file larger than a cache file grows to")
	}
	if err != nil {
		return nil, errors.Wrap(err, "reading the cache file")
	}
	return b, nil
}

// closeQuietly closes db; a failure to close after a finished transaction loses nothing.
func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	if err := db.Close(); err != nil {
		logrus.WithError(err).Debug("closing blob-info cache file")
	}
}
