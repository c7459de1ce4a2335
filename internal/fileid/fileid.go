// Package fileid identifies a version of a file's content without reading it: by the file's
// device and inode, size, and modification and change times, as one stat tells them. What was
// read or computed from a file (a parsed index.json, a tar index) can then be kept, and reused
// while a stat shows the same ID, instead of being read again.
//
// Equal IDs mean the same content when files are replaced by rename (a new inode) or
// rewritten in place (new times), which is how writers change index.json or an archive; but
// a file system's clock ticks coarsely (a few milliseconds, seconds on some), so two writes in
// place within one tick, of the same size, keep the times: Stable gives an ID only for files
// whose time is old enough that any later write changes it. The zero ID identifies nothing:
// where files have no inode (outside Unix), Of returns it, and callers must read the file.
package fileid

import (
	"io/fs"
	"sync/atomic"
	"time"
)

// settleTime is how old a file's modification time must be for Stable to trust it: more than
// the coarsest clock tick of the file systems we expect (FAT: 2 s).
const settleTime = 3 * time.Second

// ID identifies one version of a file's content, or of a part of a file (Part). It is
// comparable, for use as a map key.
type ID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64  // nanoseconds
	unique       uint64 // from New: content with no identity on disk
	part         bool   // a part of the file: off and n bytes
	off, n       int64
}

// Of returns the ID of the file fi describes: the ID a file system of ours put in fi.Sys(),
// or, on Unix, the one in the stat data of an os file. Otherwise it is the zero ID.
func Of(fi fs.FileInfo) ID {
	if id, ok := fi.Sys().(ID); ok {
		return id
	}
	return ofStat(fi)
}

// Stable is Of for keeping what was read from the file: the zero ID while the file's
// modification time is within a few seconds of now (or ahead of it), as a write in place in
// the same tick of the file system's clock could still keep that time and the size.
func Stable(fi fs.FileInfo) ID {
	if age := time.Since(fi.ModTime()); age < settleTime {
		return ID{}
	}
	return Of(fi)
}

// lastUnique numbers the IDs New returns.
var lastUnique atomic.Uint64

// New returns an ID equal to no other: for content that exists only in this process (a copy
// of a pipe, read once).
func New() ID {
	return ID{unique: lastUnique.Add(1)}
}

// IsZero reports whether id identifies nothing.
func (id ID) IsZero() bool { return id == ID{} }

// Node returns the ID of the file itself, whatever its content: its device and inode alone
// (a pipe, whose size and times change as it is written). It is the zero ID when id has no
// inode.
func (id ID) Node() ID {
	if id.part || id.unique != 0 {
		return ID{}
	}
	return ID{dev: id.dev, ino: id.ino}
}

// Part returns the ID of the n bytes at offset off of the content id identifies (a member of
// an archive); the zero ID when id is zero.
func (id ID) Part(off, n int64) ID {
	if id.IsZero() || id.part {
		return ID{}
	}
	id.part, id.off, id.n = true, off, n
	return id
}
