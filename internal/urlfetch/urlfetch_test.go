package urlfetch

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

// TestFetcherReusesConnections downloads from one host three times: the downloads share one
// connection instead of leaving one idle transport behind per URL.
func TestFetcherReusesConnections(t *testing.T) {
	t.Parallel()
	body := []byte("layer")
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	f := New(&types.SystemContext{InsecureSkipTLSVerify: types.OptionalBoolTrue}) // plain HTTP allowed
	info := types.BlobInfo{Digest: digest.FromBytes(body), Size: int64(len(body)), URLs: []string{srv.URL + "/layer"}}
	for range 3 {
		rc, _, err := f.Fetch(context.Background(), info)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 downloads from one host, want 1", n)
	}
}
