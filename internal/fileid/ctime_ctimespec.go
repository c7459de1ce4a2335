//go:build darwin || freebsd || netbsd

package fileid

import "syscall"

// ctime returns the change time in nanoseconds.
func ctime(st *syscall.Stat_t) int64 { return st.Ctimespec.Nano() }
