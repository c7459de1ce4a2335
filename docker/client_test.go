package docker

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// TestWithRetries pins the behaviour of the client's one retry loop (shared by do and
// sendRetrying): what is retried, how often, and the once-only answer to a 401 challenge.
func TestWithRetries(t *testing.T) {
	t.Parallel()
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tlsErr := x509.UnknownAuthorityError{}
	cases := []struct {
		name       string
		replayable bool
		times      int
		challenge  *bool // nil: no challenge answering (sendRetrying)
		results    []any // per attempt: a status code or an error; the last one repeats
		wantSends  int
		wantStatus int // 0: want an error
		wantDelays int
	}{
		{name: "5xx retried until it works", replayable: true, times: 3, results: []any{503, 502, 200}, wantSends: 3, wantStatus: 200, wantDelays: 2},
		{name: "retries run out: last response returned", replayable: true, times: 2, results: []any{503}, wantSends: 3, wantStatus: 503, wantDelays: 2},
		{name: "no retries configured", replayable: true, times: 0, results: []any{429}, wantSends: 1, wantStatus: 429},
		{name: "streamed body never retried", replayable: false, times: 3, results: []any{503, 200}, wantSends: 1, wantStatus: 503},
		{name: "4xx not retried", replayable: true, times: 3, results: []any{404, 200}, wantSends: 1, wantStatus: 404},
		{name: "network error retried", replayable: true, times: 3, results: []any{dialErr, 200}, wantSends: 2, wantStatus: 200, wantDelays: 1},
		{name: "network error after every retry", replayable: true, times: 1, results: []any{dialErr}, wantSends: 2, wantDelays: 1},
		{name: "TLS error not retried", replayable: true, times: 3, results: []any{tlsErr, 200}, wantSends: 1},
		{name: "401 answered without using a retry", replayable: true, times: 0, challenge: ptr(true), results: []any{401, 200}, wantSends: 2, wantStatus: 200},
		{name: "401 answered once only", replayable: true, times: 3, challenge: ptr(true), results: []any{401}, wantSends: 2, wantStatus: 401},
		{name: "401 with nothing new to answer", replayable: true, times: 3, challenge: ptr(false), results: []any{401, 200}, wantSends: 1, wantStatus: 401},
		{name: "401 not answered by sendRetrying", replayable: true, times: 3, results: []any{401, 200}, wantSends: 1, wantStatus: 401},
		{name: "401 of a streamed body not answered", replayable: false, times: 3, challenge: ptr(true), results: []any{401, 200}, wantSends: 1, wantStatus: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &client{host: "reg.example", retry: retryPolicy{times: tc.times, delay: time.Millisecond}}
			rs := &recordingSleeper{}
			ctx := withSleeper(context.Background(), rs.sleep)
			sends := 0
			send := func(attempt int) (*http.Response, error) {
				if attempt != sends {
					t.Errorf("send called with attempt %d, want %d", attempt, sends)
				}
				r := tc.results[min(sends, len(tc.results)-1)]
				sends++
				if err, ok := r.(error); ok {
					return nil, &transportError{msg: err.Error(), err: err}
				}
				req, _ := http.NewRequest(http.MethodGet, "https://reg.example/v2/", nil)
				return &http.Response{StatusCode: r.(int), Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
			}
			var challenge func(*http.Response) bool
			if tc.challenge != nil {
				challenge = func(*http.Response) bool { return *tc.challenge }
			}
			resp, err := c.withRetries(ctx, tc.replayable, send, challenge)
			if sends != tc.wantSends {
				t.Errorf("%d sends, want %d", sends, tc.wantSends)
			}
			if n := len(rs.get()); n != tc.wantDelays {
				t.Errorf("%d back-offs, want %d", n, tc.wantDelays)
			}
			switch {
			case tc.wantStatus == 0 && err == nil:
				t.Fatalf("got status %d, want an error", resp.StatusCode)
			case tc.wantStatus != 0 && err != nil:
				t.Fatalf("error %v, want status %d", err, tc.wantStatus)
			case tc.wantStatus != 0 && resp.StatusCode != tc.wantStatus:
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestSendRetryingReplaysBody checks that a prepared request's body (a token POST) is sent
// whole on every attempt, and that a body that cannot be replayed is not retried.
func TestSendRetryingReplaysBody(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		failures int
		bodies   []string
	)
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(b))
		if failures++; failures <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	sent := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), bodies...)
	}
	c := &client{host: srv.host, http: srv.Client(), retry: retryPolicy{times: 3, delay: time.Millisecond}, userAgent: "t"}
	ctx := testContext(t)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/token", strings.NewReader("grant_type=refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.sendRetrying(ctx, req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sendRetrying = %v, %v", resp, err)
	}
	drain(resp)
	if b := sent(); len(b) != 3 || b[0] != b[1] || b[1] != b[2] || b[2] != "grant_type=refresh_token" {
		t.Errorf("bodies sent %q, want the whole body three times", b)
	}

	mu.Lock()
	failures, bodies = 0, nil
	mu.Unlock()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/token", io.NopCloser(strings.NewReader("once")))
	resp, err = c.sendRetrying(ctx, req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || len(sent()) != 1 {
		t.Errorf("a body without GetBody: status %v, %v, %d sends; want one 503", resp, err, len(sent()))
	}
	drain(resp)
}

// TestFailureClasses checks that what a registry or the network does to a pull ends in the
// right class after the retries, with the cause still reachable with errors.As.
func TestFailureClasses(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 21, "amd64")
	layer := img.layers[0]
	ld := digest.FromBytes(layer)
	var throttled atomic.Int32
	cases := []struct {
		name       string
		host       func(t *testing.T) string
		readBlob   bool
		wantClass  types.ErrorClass
		wantIs     error
		wantAs     func(error) bool
		wantPhrase string
		tries      *atomic.Int32 // counts manifest GETs, when set
		wantTries  int32
	}{
		{name: "connection refused", host: func(t *testing.T) string { return testregistry.ClosedAddr(t) }, wantClass: types.ClassNetwork, wantIs: types.ErrNetwork,
			wantAs: func(err error) bool { var op *net.OpError; return errors.As(err, &op) }},
		{name: "unknown certificate authority", host: func(t *testing.T) string { return testregistry.Start(t, testregistry.Options{TLS: true}).Host },
			wantClass: types.ClassNetwork, wantAs: func(err error) bool { var ua x509.UnknownAuthorityError; return errors.As(err, &ua) }},
		{name: "throttled after every retry", host: func(t *testing.T) string {
			return newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/manifests/") {
					throttled.Add(1)
					w.Header().Set("Retry-After", "2")
					w.Header().Set("RateLimit-Remaining", "0;w=21600")
					writeRegistryError(w, http.StatusTooManyRequests, codeTooManyRequests, "slow down")
				}
			}).host
		}, wantClass: types.ClassRateLimited, wantIs: types.ErrRateLimited, wantPhrase: "Retry-After: 2, RateLimit-Remaining: 0;w=21600", tries: &throttled, wantTries: 3},
		{name: "blob cut short after every resume", readBlob: true, host: func(t *testing.T) string {
			return newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/a/b/blobs/"+ld.String() {
					w.Header().Set("Content-Length", strconv.Itoa(len(layer)))
					_, _ = w.Write(layer[:1])
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				}
				serveImage(img, w, r)
			}).host
		}, wantClass: types.ClassNetwork, wantIs: types.ErrNetwork, wantPhrase: "reading blob " + ld.String()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host := tc.host(t)
			two := 2
			sys := &types.SystemContext{NoCreds: true, RetryTimes: &two}
			ctx := testContext(t)
			src, err := mustParse(t, "//"+host+"/a/b:t").NewImageSource(ctx, sys)
			if tc.readBlob {
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				var rc io.ReadCloser
				if rc, _, err = src.GetBlob(ctx, types.BlobInfo{Digest: ld, Size: int64(len(layer))}, types.GetBlobOptions{}); err == nil {
					_, err = io.ReadAll(rc)
					rc.Close()
				}
			}
			if err == nil {
				t.Fatal("no error")
			}
			if c := types.Classify(err); c != tc.wantClass {
				t.Errorf("%v is in class %v, want %v", err, c, tc.wantClass)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("%v does not match %v", err, tc.wantIs)
			}
			if tc.wantAs != nil && !tc.wantAs(err) {
				t.Errorf("%v lost its cause", err)
			}
			if !strings.Contains(err.Error(), tc.wantPhrase) {
				t.Errorf("%q does not contain %q", err, tc.wantPhrase)
			}
			if tc.tries != nil && tc.tries.Load() != tc.wantTries {
				t.Errorf("%d tries, want %d (the first and two retries)", tc.tries.Load(), tc.wantTries)
			}
		})
	}
}

// TestPlainHTTPWhereTLSIsRequired checks that "server gave HTTP response to HTTPS client"
// (a registry without TLS, and no --tls-verify=false) is a network failure.
func TestPlainHTTPWhereTLSIsRequired(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(http.ResponseWriter, *http.Request) {})
	c, err := newClient(&types.SystemContext{NoCreds: true}, srv.host, srv.host, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	c.insecureOK = false // as for a non-loopback host
	err = c.ping(testContext(t))
	if c := types.Classify(err); c != types.ClassNetwork || !strings.Contains(fmtErr(err), "HTTP response to HTTPS client") {
		t.Errorf("ping: %v (class %v), want a network failure", err, c)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestPingTriesPlainHTTPAlongsideHTTPS checks that with plain HTTP allowed the two pings run
// side by side: the server below holds every TLS handshake until a plain GET /v2/ was served,
// so a ping that waited for HTTPS to fail first would never finish.
func TestPingTriesPlainHTTPAlongsideHTTPS(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	var once sync.Once
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		once.Do(func() { close(served) })
	})}
	go func() { _ = srv.Serve(&tlsHoldingListener{Listener: l, release: served}) }()
	t.Cleanup(func() { srv.Close() })

	host := l.Addr().String()
	c, err := newClient(&types.SystemContext{NoCreds: true, InsecureSkipTLSVerify: types.OptionalBoolTrue}, host, host, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testContext(t), 10*time.Second)
	defer cancel()
	if err := c.ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if c.base.Scheme != "http" {
		t.Errorf("pinged over %s, want http", c.base.Scheme)
	}
	if ch := c.auth.currentChallenge(); ch == nil || ch.Scheme != "basic" {
		t.Errorf("challenge %+v, want the plain ping's basic one", ch)
	}
}

// tlsHoldingListener hands plain-HTTP connections to the server at once and holds those that
// start with a TLS handshake until release is closed, then drops them.
type tlsHoldingListener struct {
	net.Listener
	release chan struct{}
}

func (l *tlsHoldingListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		first := make([]byte, 1)
		if _, err := io.ReadFull(conn, first); err != nil {
			conn.Close()
			continue
		}
		if first[0] == 0x16 { // TLS handshake record
			go func() {
				<-l.release
				conn.Close()
			}()
			continue
		}
		return &prefixedConn{Conn: conn, prefix: first}, nil
	}
}

// prefixedConn gives back the bytes read from it before.
type prefixedConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixedConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
