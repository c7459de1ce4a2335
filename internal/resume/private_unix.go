//go:build unix

package resume

import (
	"io/fs"
	"os"
	"syscall"

	"github.com/pkg/errors"
)

// noFollow makes an open fail on a symbolic link.
const noFollow = syscall.O_NOFOLLOW

// checkPrivate fails unless fi (from Lstat or Stat) is owned by this process's user and
// nobody else may write to it: a resume directory in a shared place (--tmpdir /tmp) that
// another user created could otherwise read what this one keeps, or swap files in it.
func checkPrivate(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return nil
	case int(st.Uid) != os.Geteuid():
		return errors.Errorf("%s belongs to another user (uid %d)", path, st.Uid)
	case fi.Mode().Perm()&0o022 != 0:
		return errors.Errorf("%s may be written by other users (mode %v)", path, fi.Mode().Perm())
	}
	return nil
}
