package atomicfile

import (
	"io"
	"os"
)

// flushChunk is how much a FlushBehind lets pile up before it asks the kernel to write it out.
const flushChunk = 8 << 20

// FlushBehind is an io.Writer over a file that asks the kernel to start writing each completed
// 8 MiB of it to disk while the rest still arrives (sync_file_range with SYNC_FILE_RANGE_WRITE on
// Linux; nothing elsewhere). It does not wait and promises no durability: the fsync before the
// rename still does that, but finds most of the file already on disk instead of writing all of
// it while the copy waits.
type FlushBehind struct {
	f       *os.File
	at      bool  // write with WriteAt, leaving the file position alone
	off     int64 // where the next Write lands
	flushed int64 // writeback was started for everything before this
}

// NewFlushBehind returns a FlushBehind writing to f, whose position is off.
func NewFlushBehind(f *os.File, off int64) *FlushBehind {
	return &FlushBehind{f: f, off: off, flushed: off}
}

// NewFlushBehindAt returns a FlushBehind that writes f from off on with WriteAt, never
// moving the file position, so that several of them can fill disjoint ranges of one file at
// the same time.
func NewFlushBehindAt(f *os.File, off int64) *FlushBehind {
	return &FlushBehind{f: f, at: true, off: off, flushed: off}
}

// Write writes p at the file's position (at off for NewFlushBehindAt) and starts writeback
// of full chunks behind it.
func (w *FlushBehind) Write(p []byte) (int, error) {
	var n int
	var err error
	if w.at {
		n, err = w.f.WriteAt(p, w.off)
	} else {
		n, err = w.f.Write(p)
	}
	w.off += int64(n)
	if w.off-w.flushed >= flushChunk {
		// Advisory: a failure here shows up again, and is reported, at the fsync.
		_ = startWriteback(w.f, w.flushed, w.off-w.flushed)
		w.flushed = w.off
	}
	return n, err
}

var _ io.Writer = (*FlushBehind)(nil)
