//go:build unix

package fileid

import (
	"io/fs"
	"syscall"
)

// ofStat reads the ID from the stat data of an os file.
func ofStat(fi fs.FileInfo) ID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ID{}
	}
	return ID{dev: uint64(st.Dev), ino: uint64(st.Ino), size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: ctime(st)}
}
