package docker

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestProxyRefusalNamesTheProxy checks that a proxy that refuses to carry a registry's traffic
// is blamed by name (without its credentials), as a network failure that is not retried: a
// refused CONNECT (HTTPS_PROXY) read "Get https://HOST/v2/: Forbidden", as if the registry
// had answered, and was asked again with every retry; and a plain-HTTP registry
// (--tls-verify=false) behind an HTTP_PROXY that wants credentials (407) was reported with the
// HTTPS attempt's "server gave HTTP response to HTTPS client" and its advice to pass
// --tls-verify=false, which had been passed.
func TestProxyRefusalNamesTheProxy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		tlsRegistry bool
		status      int
		sys         *types.SystemContext
		want        []string // in the error
	}{
		{
			name: "CONNECT refused", tlsRegistry: true, status: http.StatusForbidden,
			sys:  &types.SystemContext{NoCreds: true, InsecureSkipTLSVerify: types.OptionalBoolFalse},
			want: []string{"refused to connect to", "403 Forbidden"},
		},
		{
			name: "plain HTTP through a proxy wanting credentials", status: http.StatusProxyAuthRequired,
			sys:  &types.SystemContext{NoCreds: true, InsecureSkipTLSVerify: types.OptionalBoolTrue},
			want: []string{"refused to connect to", "407 Proxy Authentication Required", "USER:PASSWORD@"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			if tc.tlsRegistry {
				reg.StartTLS()
			} else {
				reg.Start()
			}
			t.Cleanup(reg.Close)
			proxy := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
				w.WriteHeader(tc.status)
			})
			proxyURL := &url.URL{Scheme: "http", Host: proxy.host, User: url.UserPassword("puser", "proxy-secret")}
			host := strings.TrimPrefix(strings.TrimPrefix(reg.URL, "https://"), "http://")
			ep, err := sharedEndpoint(tc.sys, host)
			if err != nil {
				t.Fatal(err)
			}
			// Only plain HTTP goes through the proxy in the second case, so that the HTTPS
			// ping reaches the plain registry directly, as with HTTP_PROXY alone.
			ep.transport.Proxy = func(r *http.Request) (*url.URL, error) {
				if tc.tlsRegistry || r.URL.Scheme == "http" {
					return proxyURL, nil
				}
				return nil, nil
			}
			retries := 2
			sys := *tc.sys
			sys.RetryTimes = &retries
			_, err = mustParse(t, "//"+host+"/a/b:v1").(types.ManifestDigester).ManifestDigest(testContext(t), &sys)
			if !errors.Is(err, types.ErrProxyRefused) || !errors.Is(err, types.ErrNetwork) || types.Classify(err) != types.ClassNetwork {
				t.Fatalf("got %v (class %v), want the proxy's refusal (network)", err, types.Classify(err))
			}
			msg := err.Error()
			for _, w := range append(tc.want, "proxy http://"+proxy.host) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "proxy-secret") || strings.Contains(msg, "server gave HTTP response") {
				t.Errorf("error %q shows the proxy's password or blames the HTTPS attempt", msg)
			}
			if n := len(proxy.requests()); n != 1 {
				t.Errorf("the proxy was asked %d times, want once: a refusal is not retried", n)
			}
		})
	}
}

// TestFailureThroughProxyNamesIt checks that a request that gets no answer through a proxy says
// which proxy it went through (without its credentials): one that hangs up on the CONNECT
// request left only "unexpected EOF".
func TestFailureThroughProxyNamesIt(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 4096)) // the CONNECT request
			c.Close()
		}
	}()
	sys := &types.SystemContext{NoCreds: true, InsecureSkipTLSVerify: types.OptionalBoolFalse}
	host := "hangup-proxy-test.invalid:5000" // never reached or resolved: the proxy hangs up first
	ep, err := sharedEndpoint(sys, host)
	if err != nil {
		t.Fatal(err)
	}
	ep.transport.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: l.Addr().String(), User: url.UserPassword("puser", "proxy-secret")})
	retries := 0
	sys.RetryTimes = &retries
	_, err = mustParse(t, "//"+host+"/a/b:v1").(types.ManifestDigester).ManifestDigest(testContext(t), sys)
	if types.Classify(err) != types.ClassNetwork || !strings.Contains(err.Error(), "(through proxy http://"+l.Addr().String()+")") || strings.Contains(err.Error(), "proxy-secret") {
		t.Fatalf("got %v (class %v), want a network failure naming the proxy without its password", err, types.Classify(err))
	}
}
