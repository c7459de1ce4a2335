package docker

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

func TestParseAuthHeader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   []string
		want []challenge
	}{
		{name: "bearer", in: []string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`},
			want: []challenge{{Scheme: "bearer", Params: map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}}}},
		{name: "basic", in: []string{`Basic realm="Registry Realm"`}, want: []challenge{{Scheme: "basic", Params: map[string]string{"realm": "Registry Realm"}}}},
		{name: "two in one value", in: []string{`Bearer realm="a", service=b, Basic realm="c"`},
			want: []challenge{{Scheme: "bearer", Params: map[string]string{"realm": "a", "service": "b"}}, {Scheme: "basic", Params: map[string]string{"realm": "c"}}}},
		{name: "two values", in: []string{`Basic realm="x"`, `Bearer realm="y"`},
			want: []challenge{{Scheme: "basic", Params: map[string]string{"realm": "x"}}, {Scheme: "bearer", Params: map[string]string{"realm": "y"}}}},
		{name: "case and spaces", in: []string{`BEARER  Realm = "r" ,SERVICE="s"`}, want: []challenge{{Scheme: "bearer", Params: map[string]string{"realm": "r", "service": "s"}}}},
		{name: "escaped quote", in: []string{`Bearer realm="a\"b"`}, want: []challenge{{Scheme: "bearer", Params: map[string]string{"realm": `a"b`}}}},
		{name: "scheme only", in: []string{`Bearer`}, want: []challenge{{Scheme: "bearer", Params: map[string]string{}}}},
		{name: "token68", in: []string{`Negotiate abc==, Basic realm="r"`},
			want: []challenge{{Scheme: "negotiate", Params: map[string]string{}}, {Scheme: "basic", Params: map[string]string{"realm": "r"}}}},
		{name: "scheme without params then another", in: []string{`Bearer, Basic realm="r"`},
			want: []challenge{{Scheme: "bearer", Params: map[string]string{}}, {Scheme: "basic", Params: map[string]string{"realm": "r"}}}},
		{name: "unterminated quote", in: []string{`Bearer realm="abc`}, want: []challenge{{Scheme: "bearer", Params: map[string]string{"realm": "abc"}}}},
		{name: "empty", in: []string{""}, want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := parseAuthHeader(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseAuthHeader(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// tokenServerFake is a registry with a Bearer challenge and a token endpoint whose behaviour
// tests control.
type tokenServerFake struct {
	tokens      atomic.Int32 // tokens issued
	rejectFirst atomic.Bool  // refuse the first token once (insufficient_scope)
	mu          sync.Mutex
	tokenReqs   []*http.Request
}

func (f *tokenServerFake) handler(img testImage, host func() string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			f.mu.Lock()
			f.tokenReqs = append(f.tokenReqs, r.Clone(r.Context()))
			f.mu.Unlock()
			n := f.tokens.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]any{"token": "tok" + string(rune('0'+n))})
			return
		}
		auth := r.Header.Get("Authorization")
		if auth == "" || (auth == "Bearer tok1" && f.rejectFirst.Load()) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+host()+`/token",service="fake-service",scope="repository:a/b:pull",error="insufficient_scope"`)
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		serveImage(img, w, r)
	}
}

func TestBearerTokenFlow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		rejectFirst bool
		sys         *types.SystemContext
		wantTokens  int32
		wantBasic   bool
	}{
		{name: "anonymous, token cached", sys: anonSys(), wantTokens: 1},
		{name: "with credentials", sys: &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "pw"}}, wantTokens: 1, wantBasic: true},
		{name: "401 with a token fetches a new one", rejectFirst: true, sys: anonSys(), wantTokens: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := newTestImage(t, 30, "amd64")
			f := &tokenServerFake{}
			f.rejectFirst.Store(tc.rejectFirst)
			var srv *fakeServer
			srv = newFakeServer(t, f.handler(img, func() string { return srv.host }))
			pullImage(t, testContext(t), mustParse(t, "//"+srv.host+"/a/b:t"), tc.sys, []testImage{img}, nil)
			if got := f.tokens.Load(); got != tc.wantTokens {
				t.Errorf("%d tokens fetched, want %d", got, tc.wantTokens)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, r := range f.tokenReqs {
				q := r.URL.Query()
				if q.Get("service") != "fake-service" || q.Get("scope") != "repository:a/b:pull" {
					t.Errorf("token request query %v", q)
				}
				if _, _, ok := r.BasicAuth(); ok != tc.wantBasic {
					t.Errorf("token request Basic auth %v, want %v", ok, tc.wantBasic)
				}
			}
		})
	}
}

func TestRegistryTokenIsSentAsIs(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 31, "amd64")
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer given-token" && r.URL.Path != "/v2/" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		serveImage(img, w, r)
	})
	sys := &types.SystemContext{DockerBearerRegistryToken: "given-token"}
	pullImage(t, testContext(t), mustParse(t, "//"+srv.host+"/a/b:t"), sys, []testImage{img}, nil)
}

func TestIdentityTokenUsesOAuth2(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{BearerToken: true, BasicAuth: testUsers, IdentityTokens: map[string]string{"id-token-1": "alice"}})
	ctx := testContext(t)
	sys := &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{IdentityToken: "id-token-1"}}
	img := newTestImage(t, 32, "amd64")
	ref := mustParse(t, "//"+reg.Host+"/id/repo:v1")
	pushImage(t, ctx, ref, sys, nil, nil, []testImage{img}, nil)
	pullImage(t, ctx, ref, sys, []testImage{img}, nil)
	recs := reg.Requests()
	if n := countRequests(recs, http.MethodPost, "/auth/token", ""); n != 2 { // one per source/destination
		t.Errorf("%d OAuth2 token POSTs, want 2", n)
	}
	if n := countRequests(recs, http.MethodGet, "/auth/token", ""); n != 0 {
		t.Errorf("%d token GETs, want 0", n)
	}
}

func TestTokenPerScopeSet(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{BearerToken: true})
	ctx := testContext(t)
	img := newTestImage(t, 33, "amd64")
	first := mustParse(t, "//"+reg.Host+"/s/one:v1")
	pushImage(t, ctx, first, anonSys(), nil, nil, []testImage{img}, nil)
	reg.ResetRequests()
	cache := newMemCache()
	for _, b := range img.blobs() {
		cache.RecordKnownLocation(transportName, types.BICTransportScope{Opaque: reg.Host}, digestOf(b), types.BICLocationReference{Opaque: "s/one"})
	}
	pushImage(t, ctx, mustParse(t, "//"+reg.Host+"/s/two:v1"), anonSys(), cache, nil, []testImage{img}, nil)
	var scopes []string
	for _, r := range reg.Requests() {
		if r.Path == "/auth/token" {
			q, _ := url.ParseQuery(r.RawQuery)
			scopes = append(scopes, strings.Join(q["scope"], " "))
		}
	}
	// One token for the destination (pull,push), one for mounts (adds pull on s/one).
	want := []string{"repository:s/two:pull,push", "repository:s/one:pull repository:s/two:pull,push"}
	if strings.Join(scopes, "|") != strings.Join(want, "|") {
		t.Errorf("token scopes %q, want %q", scopes, want)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	// Not parallel: it raises the global logrus level while capturing output.
	var buf bytes.Buffer
	var mu sync.Mutex
	old, oldLevel := logrus.StandardLogger().Out, logrus.GetLevel()
	logrus.SetOutput(&lockedWriter{w: &buf, mu: &mu})
	logrus.SetLevel(logrus.DebugLevel)
	defer func() {
		logrus.SetOutput(old)
		logrus.SetLevel(oldLevel)
	}()

	reg := testregistry.Start(t, testregistry.Options{BearerToken: true, BasicAuth: testUsers})
	img := newTestImage(t, 34, "amd64")
	layer := img.layers[0]
	storage := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(layer) })
	ctx := testContext(t)
	sys := &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "s3cret"}}
	pushImage(t, ctx, mustParse(t, "//"+reg.Host+"/l/r:v1"), sys, nil, nil, []testImage{img}, nil)
	pullImage(t, ctx, mustParse(t, "//"+reg.Host+"/l/r:v1"), sys, []testImage{img}, nil)

	// A redirect carrying a signed URL.
	redir := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			http.Redirect(w, r, storage.URL+"/b?sig=SIGNEDSECRET", http.StatusTemporaryRedirect)
			return
		}
		serveImage(img, w, r)
	})
	src, err := mustParse(t, "//"+redir.host+"/a/b:t").NewImageSource(ctx, anonSys())
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: digestOf(layer), Size: int64(len(layer))}, types.GetBlobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	src.Close()

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "registry request") {
		t.Fatalf("no request logged at debug level:\n%s", out)
	}
	for _, secret := range []string{"s3cret", "SIGNEDSECRET", "sig=", "Bearer ", "Basic ", "YWxpY2U6czNjcmV0", "_state", "digest=sha256"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestTokenLifetime(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts testregistry.Options
		want time.Duration
	}{
		{name: "expires_in omitted means 60s", opts: testregistry.Options{BearerToken: true, OmitExpiresIn: true}, want: defaultTokenLifetime},
		{name: "expires_in honoured", opts: testregistry.Options{BearerToken: true, TokenExpiresIn: 600 * time.Second}, want: 600 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, tc.opts)
			ctx := testContext(t)
			ref := mustParse(t, "//"+reg.Host+"/life/repo:v1")
			pushImage(t, ctx, ref, anonSys(), nil, nil, []testImage{newTestImage(t, 35, "amd64")}, nil)
			before := time.Now()
			src, err := ref.NewImageSource(ctx, anonSys())
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			a := src.(*source).c.auth
			a.mu.Lock()
			tok, ok := a.tokens[scopeKey([]scope{{repo: "life/repo", actions: "pull"}})]
			a.mu.Unlock()
			if !ok {
				t.Fatal("no cached pull token")
			}
			// Cached for 90% of the lifetime.
			if got := tok.expires.Sub(before); got > tc.want*9/10+time.Minute/6 || got < tc.want*9/10-time.Minute/6 {
				t.Errorf("token cached for %v, want about %v", got, tc.want*9/10)
			}
		})
	}
}
