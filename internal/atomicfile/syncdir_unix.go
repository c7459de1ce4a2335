//go:build unix

package atomicfile

// SyncDir fsyncs a directory, so that the names created, renamed or removed in it are durable.
func SyncDir(path string) error {
	return syncFile(path)
}
