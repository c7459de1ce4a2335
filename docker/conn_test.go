package docker

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/imgcopy/imgcopy/types"
)

// TestEndpointDialsBulkConns: the connections registry clients use send request bodies
// through copybuf (bulkConn's ReadFrom), not in io.Copy's 32 KiB pieces.
func TestEndpointDialsBulkConns(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	ep, err := sharedEndpoint(&types.SystemContext{}, "bulk-conn-test.invalid:1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ep.transport.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(bulkConn); !ok {
		t.Fatalf("dialled a %T, want a bulkConn", c)
	}
	if _, ok := c.(io.ReaderFrom); !ok {
		t.Fatal("a bulkConn must be an io.ReaderFrom, which net/http sends bodies through")
	}
}
