package docker

import (
	"bytes"
	"io"
	"net"
	"slices"
	"testing"
)

// writeSizes is a net.Conn that records the size of each Write.
type writeSizes struct {
	net.Conn
	sizes []int
	buf   bytes.Buffer
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.buf.Write(p)
}

// TestBulkConnWritesLarge: a request body of known length (what net/http hands the
// connection's ReadFrom, wrapped in an io.LimitedReader) goes out in writes of
// sendBufferSize, not of io.Copy's 32 KiB, and intact.
func TestBulkConnWritesLarge(t *testing.T) {
	t.Parallel()
	body := bigBlob(9, 2*sendBufferSize+100)
	w := &writeSizes{}
	n, err := io.Copy(bulkConn{w}, io.LimitReader(bytes.NewReader(body), int64(len(body))))
	if err != nil || n != int64(len(body)) || !bytes.Equal(w.buf.Bytes(), body) {
		t.Fatalf("copied %d bytes (err %v), want the body's %d intact", n, err, len(body))
	}
	if want := []int{sendBufferSize, sendBufferSize, 100}; !slices.Equal(w.sizes, want) {
		t.Errorf("write sizes %v, want %v", w.sizes, want)
	}
}
