// Package staging names the temporary files and directories imgcopy creates while it writes,
// in one place, so that cleanup (and tools that pick up the work of an interrupted run) can
// recognise them. Every name starts with a dot, so that listings of a user's directory hide it.
//
//   - .tmp-blob-*           a blob being streamed and verified before its rename (dir:, oci:,
//     spooled archive blobs)
//   - .tmp-NAME-*           a file replacing NAME atomically: an archive being written, index.json
//   - .imgcopy-staging-*    a writer's private directory (Dir), locked while the writer lives:
//     a layout's verified blobs (published at Commit), dir:'s blobs being written, an archive
//     being written. The next writer removes those of dead processes (Abandoned), and a layout
//     writer first takes over the verified blobs in them
//   - .imgcopy-spool-*.tar  a compressed or non-seekable archive decompressed for reading (removed
//     from the directory at once; it lives as long as it is open)
package staging

import (
	"path/filepath"
	"strings"
)

const (
	// BlobPattern is the os.CreateTemp pattern of a blob being written.
	BlobPattern = ".tmp-blob-*"
	// LayoutPrefix starts the name of a layout writer's staging directory (os.MkdirTemp pattern).
	LayoutPrefix = ".imgcopy-staging-"
	// SpoolPattern is the os.CreateTemp pattern of a decompressed copy of an archive.
	SpoolPattern = ".imgcopy-spool-*.tar"
	// tempPrefix starts every temporary file that replaces a final one.
	tempPrefix = ".tmp-"
)

// ReplacementPattern is the os.CreateTemp pattern, in the directory of final, of a file that
// will be renamed to final.
func ReplacementPattern(final string) string {
	return ReplacementPrefix(final) + "*"
}

// ReplacementPrefix starts the names ReplacementPattern(final) generates.
func ReplacementPrefix(final string) string {
	return tempPrefix + filepath.Base(final) + "-"
}

// IsTemporary reports whether a file or directory name is one imgcopy writes while working.
func IsTemporary(name string) bool {
	return strings.HasPrefix(name, tempPrefix) || strings.HasPrefix(name, LayoutPrefix) || strings.HasPrefix(name, ".imgcopy-spool-")
}
