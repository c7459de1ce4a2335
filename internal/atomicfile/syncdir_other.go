//go:build !unix

package atomicfile

// SyncDir does nothing where a directory cannot be synced (Windows: NTFS journals its
// metadata, and FlushFileBuffers refuses a directory handle).
func SyncDir(path string) error { return nil }
