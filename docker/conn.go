package docker

import (
	"context"
	"io"
	"net"
	"sync"
)

// sendBufferSize is how much of a request body is written to a plain-HTTP connection at once.
// net/http copies a body of known length into the connection through the connection's
// ReadFrom, whose generic path moves 32 KiB at a time: a 1 GiB push was 32 768 reads of the
// source and as many socket writes, 0.5 s of CPU, almost as much as hashing it (issue 18;
// crane sends layout files with sendfile, which a push that verifies what it sends cannot).
const sendBufferSize = 256 << 10

var sendBuffers = sync.Pool{New: func() any { b := make([]byte, sendBufferSize); return &b }}

// bulkConn is a connection whose ReadFrom (what net/http sends request bodies through) copies
// in writes of sendBufferSize. TLS connections wrap it and write records of their own size,
// so only plain HTTP gains.
type bulkConn struct{ net.Conn }

// ReadFrom implements io.ReaderFrom.
func (c bulkConn) ReadFrom(r io.Reader) (int64, error) {
	bp := sendBuffers.Get().(*[]byte)
	defer sendBuffers.Put(bp)
	return io.CopyBuffer(writeOnly{c.Conn}, r, *bp)
}

// writeOnly hides the connection's own ReadFrom from io.CopyBuffer, so that the buffer is used.
type writeOnly struct{ io.Writer }

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
