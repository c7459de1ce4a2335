package copy

import (
	"io"
	"sync"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// errorAnnotationReader wraps the source stream and names the source in its read errors
// (io.EOF passes), like containers/image copy/blob.go, so that a failure while the
// destination reads is blamed on the source, not on the destination.
type errorAnnotationReader struct {
	r      io.Reader
	srcRef types.ImageReference
}

func (a errorAnnotationReader) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	if err != nil && err != io.EOF {
		err = errors.Wrapf(err, "reading from source %s", types.ImageName(a.srcRef))
	}
	return n, err
}

// recordingReader is the last reader of the chain handed to PutBlob. It remembers the first
// error the chain returned (source read, verification, transform), which is then reported
// instead of whatever the destination made of it.
type recordingReader struct {
	r   io.Reader
	mu  sync.Mutex // PutBlob may read from another goroutine
	err error
	eof bool
}

func (rr *recordingReader) Read(b []byte) (int, error) {
	n, err := rr.r.Read(b)
	if err != nil {
		rr.mu.Lock()
		if err == io.EOF {
			rr.eof = true
		} else if rr.err == nil {
			rr.err = err
		}
		rr.mu.Unlock()
	}
	return n, err
}

// sawEOF reports whether the whole chain was read, so every check in it has run.
func (rr *recordingReader) sawEOF() bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.eof
}

func (rr *recordingReader) chainError() error {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.err
}
