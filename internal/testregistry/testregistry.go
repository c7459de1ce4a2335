// Package testregistry starts an in-process CNCF distribution registry (registry/handlers with
// in-memory storage) under httptest for tests: plain HTTP, TLS with a CA generated per test,
// htpasswd Basic auth, or Bearer tokens from a small token server. Every request is recorded
// so tests can assert what a client sent.
package testregistry

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"golang.org/x/crypto/bcrypt"

	// The registry looks its auth controllers and storage driver up by name in registries
	// filled by these packages' init functions; there is no other way to enable them.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// Options selects the registry variant.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a CA generated for this test.
	TLS bool
	// BasicAuth maps user names to passwords. Without BearerToken the registry itself asks for
	// Basic auth (htpasswd); with BearerToken the token server requires these credentials.
	BasicAuth map[string]string
	// BearerToken protects the registry with Docker-style Bearer tokens issued by a token
	// server at /auth/token on the same host.
	BearerToken bool
	// IdentityTokens maps OAuth2 refresh tokens accepted by the token server (POST with
	// grant_type=refresh_token) to user names.
	IdentityTokens map[string]string
	// TokenExpiresIn is the expires_in of issued tokens; 0 means 300s.
	TokenExpiresIn time.Duration
	// OmitExpiresIn leaves expires_in out of token responses (clients must default to 60s).
	OmitExpiresIn bool
	// Grant, when set, decides which of the actions a token request asks on a repository
	// the token server grants (by default all of them), as a registry does with a user who
	// may pull but not push.
	Grant func(user, repository string, actions []string) []string
	// RelativeURLs makes the registry return relative Location headers.
	RelativeURLs bool
	// Wrap, when set, wraps the registry handler (after request recording) e.g. to inject faults.
	Wrap func(next http.Handler) http.Handler
	// Filesystem stores blobs in a directory of the test instead of memory. Use it for large
	// blobs: the in-memory driver copies its whole upload buffer on every write.
	Filesystem bool
}

// RequestRecord is one request the registry (or its token server) received.
type RequestRecord struct {
	Method string
	Path   string
	// RawQuery is the query string; it may contain secrets only in tests.
	RawQuery string
	// HasAuth is true when the request carried an Authorization header.
	HasAuth bool
	// AuthScheme is the scheme of the Authorization header ("Basic", "Bearer") or "".
	AuthScheme string
	// Header is a copy of the request headers without Authorization.
	Header http.Header
	// Status is the response status code.
	Status int
}

// Registry is a running test registry.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// URL is "http://HOST" or "https://HOST".
	URL string
	// CACertPEM is the CA certificate (PEM) that signed the server certificate (TLS only).
	CACertPEM []byte
	// CertDir is a certs.d-style directory for Host holding ca.crt (TLS only), usable as
	// SystemContext.CertDir.
	CertDir string
	// Requests returns a copy of the requests received so far, in order of completion.
	Requests func() []RequestRecord
	// ResetRequests forgets the requests recorded so far.
	ResetRequests func()
	// Server is the underlying httptest server (e.g. for Client() with TLS configured).
	Server *httptest.Server
}

const headerTimeout = 10 * time.Second

// Start starts a registry for t and stops it in t.Cleanup.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.ReadHeaderTimeout = headerTimeout
	host := srv.Listener.Addr().String()
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	reg := &Registry{Host: host, URL: scheme + "://" + host, Requests: rec.snapshot, ResetRequests: rec.reset, Server: srv}

	dir := t.TempDir()
	cfg := baseConfig(opts, dir)
	tokenSrv := configureAuth(t, cfg, opts, dir, reg)
	ctx := quietContext{context.Background()}
	app := handlers.NewApp(ctx, cfg)
	var h http.Handler = app
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	mux := http.NewServeMux()
	if tokenSrv != nil {
		mux.Handle("/auth/token", tokenSrv)
	}
	mux.Handle("/", quietHandler{h})
	srv.Config.Handler = rec.wrap(mux)

	if opts.TLS {
		startTLS(t, srv, reg, dir)
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = app.Shutdown()
	})
	return reg
}

// configureAuth sets up htpasswd or token auth in cfg; it returns the token server, if any.
func configureAuth(t testing.TB, cfg *configuration.Configuration, opts Options, dir string, reg *Registry) *tokenServer {
	t.Helper()
	switch {
	case opts.BearerToken:
		tokenSrv, err := newTokenServer(opts, reg.URL+"/auth/token", reg.Host)
		if err != nil {
			t.Fatalf("testregistry: creating token server: %v", err)
		}
		bundle := filepath.Join(dir, "token-root.pem")
		if err := os.WriteFile(bundle, tokenSrv.certPEM, 0o600); err != nil {
			t.Fatalf("testregistry: %v", err)
		}
		cfg.Auth = configuration.Auth{"token": configuration.Parameters{
			"realm": tokenSrv.realm, "service": tokenSrv.service, "issuer": tokenSrv.issuer, "rootcertbundle": bundle,
		}}
		return tokenSrv
	case len(opts.BasicAuth) > 0:
		path := filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(path, opts.BasicAuth); err != nil {
			t.Fatalf("testregistry: writing htpasswd: %v", err)
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "testregistry", "path": path}}
	}
	return nil
}

// startTLS starts srv with a certificate from a CA generated for this test, and writes the
// CA into a certs.d-style directory for reg.Host.
func startTLS(t testing.TB, srv *httptest.Server, reg *Registry, dir string) {
	t.Helper()
	ca, err := newTestCA()
	if err != nil {
		t.Fatalf("testregistry: generating CA: %v", err)
	}
	cert, err := ca.serverCert()
	if err != nil {
		t.Fatalf("testregistry: generating server certificate: %v", err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	reg.CACertPEM = ca.certPEM
	reg.CertDir = filepath.Join(dir, "certs.d", reg.Host)
	if err := os.MkdirAll(reg.CertDir, 0o700); err != nil {
		t.Fatalf("testregistry: %v", err)
	}
	if err := os.WriteFile(filepath.Join(reg.CertDir, "ca.crt"), ca.certPEM, 0o600); err != nil {
		t.Fatalf("testregistry: %v", err)
	}
	srv.StartTLS()
}

func baseConfig(opts Options, dir string) *configuration.Configuration {
	driver, params := "inmemory", configuration.Parameters{}
	if opts.Filesystem {
		driver, params = "filesystem", configuration.Parameters{"rootdirectory": filepath.Join(dir, "storage")}
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			driver:   params,
			"delete": configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{
				"enabled": false,
			}},
		},
		Catalog: configuration.Catalog{MaxEntries: 1000},
		Tags:    configuration.Tags{MaxTags: 1000},
	}
	cfg.HTTP.Secret = "imgcopy-testregistry-secret"
	cfg.HTTP.RelativeURLs = opts.RelativeURLs
	// Accept foreign layers with http(s) URLs, as Docker Hub does; distribution's default
	// refuses every URL in a pushed manifest.
	cfg.Validation.Manifests.URLs.Allow = []string{"^https?://"}
	return cfg
}

func writeHtpasswd(path string, users map[string]string) error {
	var b strings.Builder
	for user, pass := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			return err
		}
		b.WriteString(user + ":" + string(hash) + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// recorder keeps a log of requests.
type recorder struct {
	mu   sync.Mutex
	reqs []RequestRecord
}

func (r *recorder) snapshot() []RequestRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RequestRecord(nil), r.reqs...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
}

func (r *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := req.Header.Clone()
		auth := h.Get("Authorization")
		h.Del("Authorization")
		scheme, _, _ := strings.Cut(auth, " ")
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, req)
		r.mu.Lock()
		r.reqs = append(r.reqs, RequestRecord{
			Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery,
			HasAuth: auth != "", AuthScheme: scheme, Header: h, Status: sw.status,
		})
		r.mu.Unlock()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return // the registry sometimes writes twice; net/http would only log it
	}
	w.status = code
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Flush forwards to the underlying writer when it supports flushing.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ClosedAddr returns "127.0.0.1:PORT" where nothing listens, for tests of a refused connection.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
