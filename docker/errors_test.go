package docker

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

func TestParseErrorBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file string
		want []string // rendered entries
	}{
		{file: "manifest-unknown.json", want: []string{`MANIFEST_UNKNOWN: manifest unknown ({"Tag":"latest"})`}},
		{file: "denied.json", want: []string{"DENIED: requested access to the resource is denied"}},
		{file: "toomanyrequests.json", want: []string{"TOOMANYREQUESTS: You have reached your pull rate limit. (see https://www.docker.com/increase-rate-limit)"}},
		{file: "token-details.json", want: []string{"incorrect username or password"}},
		{file: "oauth-invalid-grant.json", want: []string{"invalid_grant: refresh token is expired"}},
		{file: "error-object.json", want: []string{"object under error"}},
		{file: "storage-azure.xml", want: []string{"AuthenticationFailed: Server failed to authenticate the request. Signed expiry time [Sun, 06 Dec 2026 13:00:00 GMT] has to be after signed start time"}},
		{file: "html.txt", want: nil},
		{file: "plain.txt", want: []string{"upstream connect error"}},
		{file: "truncated.json", want: []string{`{"errors":[{"code":`}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join("testdata", "error-bodies", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range parseErrorBody(b) {
				got = append(got, d.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzParseErrorBody(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "error-bodies", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range parseErrorBody(b) {
			s := d.String()
			if len(d.Detail) > 0 && len(compactDetail(d.Detail)) > maxDetailLen+len("…") {
				t.Fatalf("detail not capped: %d bytes", len(compactDetail(d.Detail)))
			}
			_ = s
		}
	})
}

func FuzzParseAuthHeader(f *testing.F) {
	for _, s := range readLines(f, "testdata/auth-headers.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs := parseAuthHeader([]string{s, s})
		if len(cs) > maxChallenges {
			t.Fatalf("%d challenges", len(cs))
		}
		for _, c := range cs {
			if c.Scheme == "" || c.Scheme != strings.ToLower(c.Scheme) {
				t.Fatalf("bad scheme %q", c.Scheme)
			}
			for k := range c.Params {
				if k == "" || k != strings.ToLower(k) {
					t.Fatalf("bad param name %q", k)
				}
			}
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"999999999", maxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	t.Parallel()
	p := retryPolicy{times: 5, delay: 100 * time.Millisecond}
	for attempt, base := range []time.Duration{100, 200, 400, 800} {
		base *= time.Millisecond
		for i := 0; i < 20; i++ {
			if d := p.backoff(attempt); d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, base/2, base)
			}
		}
	}
	if d := p.backoff(40); d > maxRetryDelay {
		t.Errorf("backoff not capped: %v", d)
	}
}

func TestCheckContentRange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v            string
		offset, size int64
		ok           bool
	}{
		{"bytes 10-99/100", 10, 100, true},
		{"bytes 10-99/*", 10, 100, true},
		{"bytes 10-99/100", 10, -1, true},
		{"bytes 0-99/100", 10, 100, false},
		{"bytes 10-99/101", 10, 100, false},
		{"", 10, 100, false},
		{"items 10-99/100", 10, 100, false},
	}
	for _, tc := range cases {
		if err := checkContentRange(tc.v, tc.offset, tc.size); (err == nil) != tc.ok {
			t.Errorf("checkContentRange(%q, %d, %d) = %v", tc.v, tc.offset, tc.size, err)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "127.1.2.3": true, "[::1]:5000": true, "[::1]": true,
		"registry-1.docker.io": false, "10.0.0.1:5000": false, "localhost.example.com": false, "[::2]": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}

func TestErrorDetailIsValidUTF8Capped(t *testing.T) {
	t.Parallel()
	long := `{"errors":[{"code":"X","message":"m","detail":"` + strings.Repeat("a", 1000) + `"}]}`
	ds := parseErrorBody([]byte(long))
	if len(ds) != 1 || !utf8.ValidString(ds[0].String()) || len(ds[0].String()) > 300 {
		t.Errorf("detail not capped: %q", ds)
	}
}

// TestRegistryErrorMapping checks the one place that maps statuses and error codes onto
// sentinels and classes, including when a 401/403 reads "not found or not authorized".
func TestRegistryErrorMapping(t *testing.T) {
	t.Parallel()
	const bearerChallenge = `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`
	cases := []struct {
		name       string
		status     int
		method     string // GET when empty
		kind       objectKind
		pullOnly   bool
		auth       string // Authorization header sent
		challenge  string // WWW-Authenticate of the response
		code       string // registry error code in the body
		header     http.Header
		wantIs     []error
		wantNot    []error
		wantClass  types.ErrorClass
		wantPhrase []string
	}{
		{name: "manifest unknown", status: 404, kind: kindManifest, pullOnly: true, code: "MANIFEST_UNKNOWN",
			wantIs: []error{types.ErrManifestNotFound}, wantNot: []error{types.ErrRepositoryNotFound}, wantClass: types.ClassNotFound,
			wantPhrase: []string{"repository or tag not found in reg.example/a/b", "MANIFEST_UNKNOWN"}},
		{name: "repository unknown on a manifest GET", status: 404, kind: kindManifest, pullOnly: true, code: "NAME_UNKNOWN",
			wantIs: []error{types.ErrManifestNotFound, types.ErrRepositoryNotFound}, wantClass: types.ClassNotFound,
			wantPhrase: []string{"repository reg.example/a/b not found"}},
		{name: "blob unknown", status: 404, kind: kindBlob, pullOnly: true, code: "BLOB_UNKNOWN",
			wantIs: []error{types.ErrBlobNotFound}, wantClass: types.ClassNotFound, wantPhrase: []string{"blob not found in reg.example/a/b"}},
		{name: "blob unknown with another status", status: 400, method: http.MethodHead, kind: kindBlob, code: "BLOB_UNKNOWN",
			wantIs: []error{types.ErrBlobNotFound}, wantClass: types.ClassNotFound},
		{name: "tags of a missing repository", status: 404, kind: kindRepository, pullOnly: true,
			wantIs: []error{types.ErrRepositoryNotFound}, wantClass: types.ClassNotFound},
		{name: "NAME_UNKNOWN elsewhere", status: 404, kind: kindOther, code: "NAME_UNKNOWN",
			wantIs: []error{types.ErrRepositoryNotFound}, wantNot: []error{types.ErrManifestNotFound, types.ErrBlobNotFound}, wantClass: types.ClassNotFound},
		{name: "404 of something else", status: 404, kind: kindOther, wantClass: types.ClassOther},
		{name: "basic credentials asked for", status: 401, kind: kindManifest, pullOnly: true, challenge: `Basic realm="reg"`,
			wantIs: []error{types.ErrUnauthorized}, wantNot: []error{types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth,
			wantPhrase: []string{"authentication required for reg.example/a/b"}},
		{name: "basic credentials refused", status: 401, kind: kindManifest, pullOnly: true, auth: "Basic YTpi", challenge: `Basic realm="reg"`,
			wantIs: []error{types.ErrUnauthorized}, wantNot: []error{types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth},
		{name: "insufficient scope on a pull", status: 401, kind: kindManifest, pullOnly: true,
			challenge: bearerChallenge + `,error="insufficient_scope"`, code: "UNAUTHORIZED",
			wantIs: []error{types.ErrUnauthorized, types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth,
			wantPhrase: []string{"reg.example/a/b: not found or not authorized", "may not exist", "UNAUTHORIZED"}},
		{name: "token refused on a pull", status: 401, kind: kindBlob, pullOnly: true, auth: "Bearer SECRETTOKEN", challenge: bearerChallenge,
			wantIs: []error{types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth},
		{name: "tag list refused", status: 401, kind: kindRepository, pullOnly: true, auth: "Bearer SECRETTOKEN",
			wantIs: []error{types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth},
		{name: "insufficient scope on a push", status: 401, method: http.MethodHead, kind: kindBlob,
			challenge: bearerChallenge + `,error="insufficient_scope"`,
			wantIs:    []error{types.ErrUnauthorized}, wantNot: []error{types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth},
		{name: "token endpoint refuses", status: 401, kind: kindOther, pullOnly: true, challenge: `Basic realm="token"`,
			wantIs: []error{types.ErrUnauthorized}, wantNot: []error{types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth},
		{name: "denied on a pull", status: 403, kind: kindManifest, pullOnly: true, code: "DENIED",
			wantIs: []error{types.ErrDenied, types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth,
			wantPhrase: []string{"not found or not authorized"}},
		{name: "denied on a push", status: 403, method: http.MethodPut, kind: kindManifest, code: "DENIED",
			wantIs: []error{types.ErrDenied}, wantNot: []error{types.ErrNotFoundOrDenied}, wantClass: types.ClassAuth,
			wantPhrase: []string{"access denied to reg.example/a/b"}},
		{name: "throttled", status: 429, kind: kindManifest, pullOnly: true, auth: "Bearer SECRETTOKEN", code: "TOOMANYREQUESTS",
			header: http.Header{"Retry-After": {"60"}, "Ratelimit-Limit": {"100;w=21600"}, "Ratelimit-Remaining": {"0;w=21600"}},
			wantIs: []error{types.ErrRateLimited}, wantNot: []error{types.ErrNotFoundOrDenied}, wantClass: types.ClassRateLimited,
			wantPhrase: []string{"rate limited by reg.example/a/b", "Retry-After: 60", "RateLimit-Limit: 100;w=21600", "RateLimit-Remaining: 0;w=21600"}},
		{name: "throttled without headers", status: 429, kind: kindOther,
			wantIs: []error{types.ErrRateLimited}, wantClass: types.ClassRateLimited},
		{name: "TOOMANYREQUESTS with 503", status: 503, kind: kindBlob, code: "TOOMANYREQUESTS",
			wantIs: []error{types.ErrRateLimited}, wantClass: types.ClassRateLimited},
		{name: "server error", status: 500, kind: kindManifest, pullOnly: true, code: "UNKNOWN", wantClass: types.ClassOther},
		{name: "service unavailable", status: 503, kind: kindBlob, pullOnly: true,
			wantIs: []error{types.ErrNetwork}, wantClass: types.ClassNetwork, wantPhrase: []string{"503 Service Unavailable"}},
		{name: "bad gateway", status: 502, method: http.MethodPut, kind: kindManifest,
			wantIs: []error{types.ErrNetwork}, wantClass: types.ClassNetwork},
		{name: "gateway timeout", status: 504, kind: kindOther, wantIs: []error{types.ErrNetwork}, wantClass: types.ClassNetwork},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "https://reg.example/v2/a/b/manifests/t?sig=SECRETSIG", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			h := http.Header{}
			for k, v := range tc.header {
				h[http.CanonicalHeaderKey(k)] = v
			}
			if tc.challenge != "" {
				h.Set("WWW-Authenticate", tc.challenge)
			}
			body := ""
			if tc.code != "" {
				body = `{"errors":[{"code":"` + tc.code + `","message":"m"}]}`
			}
			resp := &http.Response{StatusCode: tc.status, Header: h, Request: req, Body: io.NopCloser(strings.NewReader(body))}
			err := newRegistryError(resp, "reg.example/a/b", tc.kind, tc.pullOnly)
			for _, s := range tc.wantIs {
				if !errors.Is(err, s) {
					t.Errorf("%q does not match %v", err, s)
				}
			}
			for _, s := range tc.wantNot {
				if errors.Is(err, s) {
					t.Errorf("%q matches %v", err, s)
				}
			}
			if c := types.Classify(err); c != tc.wantClass {
				t.Errorf("%q is in class %v, want %v", err, c, tc.wantClass)
			}
			for _, p := range tc.wantPhrase {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("%q does not contain %q", err, p)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("%q shows the query or the token", err)
			}
		})
	}
}
