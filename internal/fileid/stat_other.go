//go:build !unix

package fileid

import "io/fs"

// ofStat cannot identify files without inodes: the zero ID.
func ofStat(fs.FileInfo) ID { return ID{} }
