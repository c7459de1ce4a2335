package staging

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/filelock"
)

// LockName is the lock file inside a staging directory. Its writer holds an flock on it for
// as long as it lives; a process that dies (even by SIGKILL) releases it.
const LockName = ".lock"

// unlockedGrace is how old a staging directory without a lock file must be to count as
// abandoned: its writer creates the lock file right after the directory, so one without is
// being created now, or was left by a writer that died in that instant.
const unlockedGrace = time.Hour

// Dir is a writer's private staging directory, DIR/.imgcopy-staging-*, locked for as long as
// the writer lives, so that the next writer that opens DIR can tell what dead processes left
// behind (Abandoned) from the work of live ones, whatever its age.
type Dir struct {
	Path string
	lock *os.File
}

// NewDir creates and locks a staging directory in parent.
func NewDir(parent string) (*Dir, error) {
	p, err := os.MkdirTemp(parent, LayoutPrefix)
	if err != nil {
		return nil, errors.Wrapf(err, "creating a staging directory in %s", parent)
	}
	// The lock file gets its name only once locked, so that no other process can find it
	// unlocked (and take the directory for a dead writer's) in between.
	f, err := os.OpenFile(filepath.Join(p, LockName+"-new"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		var ok bool
		if ok, err = filelock.TryLock(f); err == nil && !ok {
			err = errors.New("locked by another process")
		}
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(p, LockName))
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(p)
		return nil, errors.Wrapf(err, "locking staging directory %s", p)
	}
	return &Dir{Path: p, lock: f}, nil
}

// Remove removes the staging directory and releases it.
func (d *Dir) Remove() error {
	err := os.RemoveAll(d.Path)
	d.lock.Close()
	return errors.Wrapf(err, "removing staging directory %s", d.Path)
}

// Release releases the staging directory and leaves it in place, as a writer that died would:
// the next writer takes what it can use from it (Abandoned) and removes it.
func (d *Dir) Release() {
	d.lock.Close()
}

// Abandoned returns the staging directories in parent that dead writers left (their lock
// file is not held), each locked by the caller now, who takes what it can use from them and
// removes them. Directories of live writers are left alone.
func Abandoned(parent string) []*Dir {
	return AbandonedOf(parent, nil)
}

// AbandonedOf is Abandoned limited to the directories whose path mine accepts (nil: all), for
// writers that share parent with others (archives, see ArchiveOf).
func AbandonedOf(parent string, mine func(path string) bool) []*Dir {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var out []*Dir
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), LayoutPrefix) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if mine != nil && !mine(p) {
			continue
		}
		f, err := os.OpenFile(filepath.Join(p, LockName), os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			if info, ierr := e.Info(); ierr == nil && time.Since(info.ModTime()) > unlockedGrace {
				f, err = os.OpenFile(filepath.Join(p, LockName), os.O_RDWR|os.O_CREATE, 0o600)
			}
		}
		if err != nil {
			continue
		}
		if ok, err := filelock.TryLock(f); err != nil || !ok {
			f.Close()
			continue
		}
		out = append(out, &Dir{Path: p, lock: f})
	}
	return out
}

// TakeAbandoned removes the staging directories dead writers left in parent (see Abandoned).
// Before it removes one, it moves the regular files in it whose names take accepts into the
// directory into (the blobs a dead writer had verified, for a new writer to reuse) and
// reports their names and sizes; take nil moves nothing.
func TakeAbandoned(parent, into string, take func(name string) bool) map[string]int64 {
	moved := map[string]int64{}
	for _, old := range Abandoned(parent) {
		entries, _ := os.ReadDir(old.Path)
		for _, e := range entries {
			if take == nil || !e.Type().IsRegular() || !take(e.Name()) {
				continue
			}
			info, err := e.Info()
			if err == nil && os.Rename(filepath.Join(old.Path, e.Name()), filepath.Join(into, e.Name())) == nil {
				moved[e.Name()] = info.Size()
				logrus.WithFields(logrus.Fields{"file": e.Name(), "size": info.Size()}).Debug("file kept from an interrupted copy")
			}
		}
		logrus.WithField("path", old.Path).Debug("removing what an interrupted copy left")
		if err := old.Remove(); err != nil {
			logrus.WithError(err).Warn("cannot remove what an interrupted copy left")
		}
	}
	return moved
}

// RemoveAbandoned removes the staging directories dead writers left in parent.
func RemoveAbandoned(parent string) {
	TakeAbandoned(parent, "", nil)
}

// RemoveAbandonedOf removes the staging directories dead writers left in parent whose path
// mine accepts.
func RemoveAbandonedOf(parent string, mine func(path string) bool) {
	for _, old := range AbandonedOf(parent, mine) {
		logrus.WithField("path", old.Path).Debug("removing what an interrupted copy left")
		if err := old.Remove(); err != nil {
			logrus.WithError(err).Warn("cannot remove what an interrupted copy left")
		}
	}
}

// ArchiveOf returns the base name of the archive whose unfinished replacement
// (ReplacementPattern) the staging directory dir holds, "" when it holds none. Archives share
// their directory with others: a writer takes over, and removes, only what a dead writer of
// the same archive left, and what belongs to no archive.
func ArchiveOf(dir string) string {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), tempPrefix)
		i := strings.LastIndexByte(name, '-')
		if !ok || i <= 0 || !e.Type().IsRegular() || strings.HasPrefix(e.Name(), strings.TrimSuffix(BlobPattern, "*")) {
			continue
		}
		if digits := name[i+1:]; digits != "" && strings.Trim(digits, "0123456789") == "" {
			return name[:i]
		}
	}
	return ""
}
