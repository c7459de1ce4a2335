// Package copybuf copies blob streams in large pieces. io.Copy moves 32 KiB at a time, and
// so does the ReadFrom of an *os.File or a TCP connection for a source that is neither a
// file nor a socket: a 1 GiB blob was 32 768 reads and as many writes, a cost comparable to
// hashing it on the benchmark VM (issue 18).
package copybuf

import (
	"io"
	"sync"
)

// Size is the piece Copy moves at a time: large enough that system calls cost little, small
// enough for the six blobs a copy moves at once.
const Size = 256 << 10

var buffers = sync.Pool{New: func() any { b := make([]byte, Size); return &b }}

// Copy copies src to dst through a pooled buffer of Size bytes, like io.CopyBuffer, except
// that dst's own ReadFrom is not used (it would pick a smaller buffer); src's WriteTo still is.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	return io.CopyBuffer(writerOnly{dst}, src, *bp)
}

// writerOnly hides the writer's ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }
