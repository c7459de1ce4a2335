package urlfetch

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

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

// TestProxyRefusalNamesTheProxy: a proxy (HTTPS_PROXY) that refuses to open a tunnel to a
// foreign layer's host is named, without its credentials, as a refusal by the proxy
// (types.ErrProxyRefused); it read "Forbidden", as if the layer's server had answered.
func TestProxyRefusalNamesTheProxy(t *testing.T) {
	t.Parallel()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden) // every CONNECT
	}))
	t.Cleanup(proxy.Close)
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL.User = url.UserPassword("puser", "proxy-secret")
	f := New(nil)
	c, err := f.client("layers.example.com")
	if err != nil {
		t.Fatal(err)
	}
	c.Transport.(*http.Transport).Proxy = http.ProxyURL(proxyURL) // what HTTPS_PROXY would give
	info := types.BlobInfo{Digest: digest.FromString("layer"), Size: 5, URLs: []string{"https://layers.example.com/layer"}}
	_, _, err = f.Fetch(context.Background(), info)
	if !errors.Is(err, types.ErrProxyRefused) || types.Classify(err) != types.ClassNetwork {
		t.Fatalf("error %v (class %v), want a refusal by the proxy", err, types.Classify(err))
	}
	for _, want := range []string{proxyURL.Host, "layers.example.com", "403 Forbidden"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "proxy-secret") {
		t.Errorf("error %q shows the proxy's password", err)
	}
}
