package docker

import (
	"context"
	"io"
	"net"
	"os"
	"sync/atomic"

	"github.com/imgcopy/imgcopy/internal/copybuf"
)

// bulkConn is a connection whose ReadFrom (what net/http sends a request body of known length
// through) writes pieces of copybuf.Size: net/http's copy through the connection's own
// ReadFrom moved 32 KiB at a time, 32 768 reads of the source and as many socket writes for
// a 1 GiB push, 0.5 s of CPU, almost as much as hashing it (issue 18; crane sends layout files
// with sendfile, which a push that verifies what it sends cannot). TLS connections wrap it
// and write records of their own size, so only plain HTTP gains.
type bulkConn struct{ net.Conn }

// ReadFrom implements io.ReaderFrom. A request body that is a file (fileBody, under the
// io.LimitedReader net/http puts around a body of known length) goes out with the
// connection's own ReadFrom, which is sendfile(2) for a TCP connection.
func (c bulkConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if fb, sent := fileBodyOf(lr.R); fb != nil {
			if rf, ok := c.Conn.(io.ReaderFrom); ok {
				return sendFileBody(rf, fb, lr, sent)
			}
		}
	}
	return copybuf.Copy(c.Conn, r)
}

// sendFilePiece is how much of a file body the connection's ReadFrom (sendfile) is given at a
// time: after each piece the stall watchdog hears that bytes moved. It is the piece a body
// read through copybuf is written in, so a slow link counts as stalled exactly as before.
const sendFilePiece = copybuf.Size

// filePiecesSent counts the pieces of file bodies handed to a connection's ReadFrom (tests).
var filePiecesSent atomic.Int64

// fileBody is a request body sent from a file: size bytes from the file's current offset.
// Over plain HTTP the connection sends it with sendfile(2) (bulkConn); over TLS, or for the
// few bytes net/http buffers with the request's header, it is read like any body.
type fileBody struct {
	f    *os.File
	left io.LimitedReader // f, limited to the bytes still to send
}

func newFileBody(f *os.File, size int64) *fileBody {
	return &fileBody{f: f, left: io.LimitedReader{R: f, N: size}}
}

func (b *fileBody) Read(p []byte) (int, error) { return b.left.Read(p) }

// Close implements io.Closer (the file belongs to the caller), so that net/http does not wrap
// the body in a type bulkConn cannot see through.
func (b *fileBody) Close() error { return nil }

// fileBodySender is a request body wrapping a fileBody: it returns it, and a function to call
// after each piece sent.
type fileBodySender interface {
	fileBody() (*fileBody, func())
}

// fileBodyOf returns the fileBody r is or wraps, or nil.
func fileBodyOf(r io.Reader) (*fileBody, func()) {
	switch b := r.(type) {
	case *fileBody:
		return b, nil
	case fileBodySender:
		return b.fileBody()
	}
	return nil, nil
}

// sendFileBody sends what lr allows of fb through rf in pieces of sendFilePiece, calling sent
// after each.
func sendFileBody(rf io.ReaderFrom, fb *fileBody, lr *io.LimitedReader, sent func()) (int64, error) {
	var total int64
	for lr.N > 0 && fb.left.N > 0 {
		piece := min(lr.N, fb.left.N, sendFilePiece)
		filePiecesSent.Add(1)
		n, err := rf.ReadFrom(&io.LimitedReader{R: fb.f, N: piece})
		total += n
		lr.N -= n
		fb.left.N -= n
		if sent != nil && n > 0 {
			sent()
		}
		if err != nil || n < piece { // a shorter file: net/http reports the missing bytes
			return total, err
		}
	}
	return total, nil
}

// bulkDialer wraps dial so that the connections it makes are bulkConns.
func bulkDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return bulkConn{c}, nil
	}
}
