package copy

import (
	"fmt"
	"io"
	"sync"

	"github.com/imgcopy/imgcopy/types"
)

// reporter delivers progress events and the plain report lines of a copy.
type reporter struct {
	fn func(ProgressEvent) // may be nil
	mu sync.Mutex          // serializes lines on w
	w  io.Writer           // may be nil
}

func (r *reporter) event(e ProgressEvent) {
	if r.fn != nil {
		r.fn(e)
	}
}

func (r *reporter) line(format string, args ...any) {
	if r.w == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, format+"\n", args...)
}

// progressReader counts the bytes of a blob read from the source and reports them.
type progressReader struct {
	r      io.Reader
	rep    *reporter
	info   types.BlobInfo
	offset int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.offset += int64(n)
		p.rep.event(ProgressEvent{Kind: EventBlobProgress, Digest: p.info.Digest, MediaType: p.info.MediaType, Size: p.info.Size, Offset: p.offset})
	}
	return n, err
}
