//go:build unix && !(linux || solaris || dragonfly || openbsd || darwin || freebsd || netbsd)

package fileid

import "syscall"

// ctime is not read here: the other fields identify the content.
func ctime(*syscall.Stat_t) int64 { return 0 }
