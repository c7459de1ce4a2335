package staging

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/filelock"
)

// A temporary file is live while the process that made it holds an exclusive flock on it:
// CreateTemp takes that lock before it returns, and the kernel drops it when the process
// closes the handle or dies. RemoveDead removes only what nobody holds, so that a run cleans
// up after a killed one without touching a concurrent writer's files. A file is renamed to
// its final name before its handle is closed, so that it is never unlocked under its
// temporary name. Staging directories (Dir) are locked through a lock file inside them
// instead, and found by Abandoned, so that a writer can take over what a dead one verified.

// maxCreateTries bounds the retries when a cleaner removes a new temporary file before its
// creator locked it.
const maxCreateTries = 5

// CreateTemp creates a temporary file like os.CreateTemp and locks it; it stays locked until
// the returned file is closed.
func CreateTemp(dir, pattern string) (*os.File, error) {
	for range maxCreateTries {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, err
		}
		if ok, err := lockFresh(f, f.Name()); ok || err != nil {
			if err != nil {
				f.Close()
				os.Remove(f.Name())
				return nil, err
			}
			return f, nil
		}
		f.Close()
	}
	return nil, errors.Errorf("creating a temporary file in %s: it kept being removed", dir)
}

// lockFresh locks f, just created at path, and checks that path still names it: a cleaner
// that found it between its creation and the lock removes it. It reports false when the
// caller should try again with a new name.
func lockFresh(f *os.File, path string) (bool, error) {
	ok, err := filelock.TryLock(f)
	if err != nil || !ok {
		return false, err
	}
	fi, ferr := f.Stat()
	pi, perr := os.Lstat(path)
	return ferr == nil && perr == nil && os.SameFile(fi, pi), nil
}

// RemoveDead removes the temporary files (IsTemporary, but not the staging directories that
// Abandoned handles) directly in dir that no live process holds, i.e. those a killed or
// crashed run left behind. match, when not nil,
// narrows the candidates (in a user's directory, to the temporary files of one archive).
// Errors are logged at debug level: a leftover costs space, never correctness.
func RemoveDead(dir string, match func(name string) bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !IsTemporary(name) || strings.HasPrefix(name, LayoutPrefix) || (match != nil && !match(name)) || e.Type()&fs.ModeSymlink != 0 {
			continue
		}
		p := filepath.Join(dir, name)
		if removed, err := removeIfDead(p); err != nil {
			logrus.WithFields(logrus.Fields{"path": p, "error": err}).Debug("cannot remove a leftover temporary file")
		} else if removed {
			logrus.WithField("path", p).Debug("removed a temporary file a killed run left behind")
		}
	}
}

// removeIfDead removes p (a file, or a directory and its content) when nobody holds its lock.
func removeIfDead(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	ok, err := filelock.TryLock(f)
	if err != nil || !ok {
		return false, err
	}
	if err := os.RemoveAll(p); err != nil {
		return false, err
	}
	return true, nil
}
