//go:build unix

package archivefile

import (
	"os"
	"syscall"
)

// keyOf identifies a regular file's content for sharing its spool.
func keyOf(st os.FileInfo) (spoolKey, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return spoolKey{}, false
	}
	return spoolKey{dev: uint64(sys.Dev), ino: uint64(sys.Ino), size: st.Size(), mtime: st.ModTime().UnixNano()}, true
}
