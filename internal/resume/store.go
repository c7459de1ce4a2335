// Package resume keeps what interrupted registry transfers leave behind, so that a later run
// (another process) continues them: partial downloads of blobs, named by digest, and records
// of upload sessions. Everything lives under one directory:
//
//	DIR/blobs/ALG-HEX      the first bytes of a blob being downloaded (or all of them: a
//	                       blob a local destination had staged when its copy stopped)
//	DIR/uploads/HEX.json   an upload session of one blob to one repository (HEX hashes the key)
//
// A process locks each file (flock) while it uses it, so two processes never write the same
// file, and a file whose lock nobody holds was left by a finished or dead process. Files not
// written for MaxAge are pruned, and partial downloads are bounded by MaxSize in total, the
// oldest pruned first; files in use are never pruned.
//
// Kept data is never trusted: a partial download is only a claim about a blob's first bytes,
// which the copy engine verifies together with the rest.
package resume

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/filelock"
	"github.com/imgcopy/imgcopy/types"
)

const (
	blobsDir   = "blobs"
	uploadsDir = "uploads"
)

// MinSize is the smallest blob worth keeping. Keeping is paid on every run, for every byte
// (written to the page cache a second time: ≈1.3 ms of CPU per MiB on the 2-CPU benchmark VM,
// +0.5 ms per blob), a fetch again only after an interruption, and only for the blobs then in
// flight (6 by default): below 4 MiB that is at most 24 MiB fetched again, a few seconds on a
// slow link, while keeping 60 blobs of 1 MiB cost a 60-layer pull +30 % of wall time (bench
// reg-oci many, issue 18).
const MinSize = 4 << 20

// Store is a resume directory. It is safe for concurrent use.
type Store struct {
	dir     string
	maxAge  time.Duration
	maxSize int64

	warnOnce sync.Once // that the directory is not private (subdir)

	mu     sync.Mutex // serializes pruning within this process, guards what follows
	made   map[string]bool
	pruned bool  // a first prune ran: later ones only when reserved bytes may overflow
	kept   int64 // bytes of partial downloads the last prune left
	added  int64 // bytes reserved by OpenPartial since
}

// New returns the store opts describe, or nil when opts is nil or names no directory.
func New(opts *types.ResumeOptions) *Store {
	if opts == nil || opts.Dir == "" {
		return nil
	}
	s := &Store{dir: opts.Dir, maxAge: opts.MaxAge, maxSize: opts.MaxSize}
	if s.maxAge <= 0 {
		s.maxAge = types.DefaultResumeMaxAge
	}
	if s.maxSize <= 0 {
		s.maxSize = types.DefaultResumeMaxSize
	}
	return s
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// subdir creates (if needed) and returns a subdirectory of the store.
func (s *Store) subdir(name string) (string, error) {
	dir := filepath.Join(s.dir, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.made[name] {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", errors.Wrap(err, "creating the resume directory")
	}
	for _, p := range []string{s.dir, dir} {
		fi, err := os.Stat(p) // a link to a private directory is as good
		if err == nil {
			err = checkPrivate(p, fi)
		}
		if err != nil {
			err = errors.Wrap(err, "not keeping anything in the resume directory")
			s.warnOnce.Do(func() { logrus.Warn(err.Error()) })
			return "", err
		}
	}
	if s.made == nil {
		s.made = map[string]bool{}
	}
	s.made[name] = true
	return dir, nil
}

// openLocked opens (creating) path and locks it without waiting. It returns nil when another
// process holds the lock. A file that was removed between the open and the lock (by its owner
// when it finished, or by pruning) is opened again, so that the lock is always on the file
// the path names.
//
// Only a regular file of this user's is used: never a symbolic link (an earlier run never
// leaves one, and following it would write, and truncate, a file elsewhere), a FIFO or a
// device.
func openLocked(path string) (*os.File, error) {
	for range 3 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|noFollow, 0o600)
		if err != nil {
			return nil, errors.Wrapf(err, "opening %s", path)
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, errors.Errorf("opening %s: not a regular file", path)
		} else if err := checkPrivate(path, fi); err != nil {
			f.Close()
			return nil, errors.Wrapf(err, "opening %s", path)
		}
		ok, err := filelock.TryLock(f)
		if err != nil || !ok {
			f.Close()
			return nil, err
		}
		fi, ferr := f.Stat()
		pi, perr := os.Stat(path)
		if ferr == nil && perr == nil && os.SameFile(fi, pi) {
			return f, nil
		}
		f.Close()
	}
	return nil, errors.Errorf("opening %s: the file keeps being replaced", path)
}

// removeIfUnused removes path unless a live process holds its lock.
func removeIfUnused(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	defer f.Close()
	if ok, err := filelock.TryLock(f); err != nil || !ok {
		return false
	}
	return os.Remove(path) == nil
}

type keptFile struct {
	path string
	size int64
	mod  time.Time
}

// prune removes files older than the age limit, then the oldest partial downloads until
// those left plus reserve bytes fit the size limit. Files in use are left alone.
func (s *Store) prune(reserve int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(reserve, "")
}

// reserve makes room for the partial download at path of a blob of size bytes: for what it
// will grow by (what an earlier run kept of the blob is counted already), and never by
// pruning that file itself, which is about to be continued. The directory is pruned on the
// first call, then again only when what it held after the last prune plus what this process
// reserved since might not fit the size limit (other processes' files are found then), so
// that a pull of many blobs does not list the directory once per blob.
func (s *Store) reserve(path string, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	grow := size
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		grow = max(size-fi.Size(), 0)
	}
	if !s.pruned || s.kept+s.added+grow > s.maxSize {
		s.pruneLocked(grow, path)
	}
	s.added += grow
}

// pruneLocked prunes (see prune), sparing the file at spare.
func (s *Store) pruneLocked(reserve int64, spare string) {
	now := time.Now()
	var blobs []keptFile
	var total int64
	for _, sub := range []string{blobsDir, uploadsDir} {
		entries, err := os.ReadDir(filepath.Join(s.dir, sub))
		if err != nil {
			continue
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
			f := keptFile{path: filepath.Join(s.dir, sub, e.Name()), size: info.Size(), mod: info.ModTime()}
			if now.Sub(f.mod) > s.maxAge && removeIfUnused(f.path) {
				logrus.WithFields(logrus.Fields{"file": f.path, "age": now.Sub(f.mod).Round(time.Second)}).Debug("pruned an old resume file")
				continue
			}
			if sub == blobsDir {
				blobs = append(blobs, f)
				total += f.size
			}
		}
	}
	slices.SortFunc(blobs, func(a, b keptFile) int { return a.mod.Compare(b.mod) })
	for _, f := range blobs {
		if total+reserve <= s.maxSize {
			break
		}
		if f.path != spare && removeIfUnused(f.path) {
			total -= f.size
			logrus.WithFields(logrus.Fields{"file": f.path, "size": f.size}).Debug("pruned a partial download to bound the resume directory")
		}
	}
	s.pruned, s.kept, s.added = true, total, 0
}

// Prune removes what the limits no longer allow: files older than the age limit and, oldest
// first, partial downloads beyond the size limit.
func (s *Store) Prune() { s.prune(0) }
