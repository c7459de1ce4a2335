//go:build !linux

package atomicfile

import "os"

// startWriteback does nothing where sync_file_range does not exist; the fsync does all the work.
var startWriteback = func(f *os.File, off, n int64) error { return nil }

// dataSync is an fsync of f where fdatasync(2) does not exist.
var dataSync = func(f *os.File) error { return f.Sync() }
