package tests

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// faultyRegistry wraps the test registry's handler and breaks some repositories on purpose:
// blobless/ lacks a layer, corrupt/ serves a damaged layer, denied/ refuses pushes and
// throttled/ answers 429 to every manifest request and unavailable/ 503 to every request.
func faultyRegistry(layer fixtures.Blob) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, read := r.URL.Path, r.Method == http.MethodGet || r.Method == http.MethodHead
			switch {
			case read && p == "/v2/blobless/hello/blobs/"+layer.Digest.String():
				registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
			case r.Method == http.MethodGet && p == "/v2/corrupt/hello/blobs/"+layer.Digest.String():
				bad := append([]byte(nil), layer.Data...)
				bad[len(bad)/2] ^= 0xff
				_, _ = w.Write(bad)
			case !read && strings.HasPrefix(p, "/v2/denied/"):
				registryError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied")
			case strings.HasPrefix(p, "/v2/throttled/") && strings.Contains(p, "/manifests/"):
				w.Header().Set("Retry-After", "0")
				w.Header().Set("RateLimit-Remaining", "0;w=21600")
				registryError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "You have reached your pull rate limit")
			case strings.HasPrefix(p, "/v2/unavailable/"):
				registryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "back-end storage is down")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

func registryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"` + message + `"}]}`))
}

// hubLikeRegistry answers like Docker Hub for a repository that does not exist: an anonymous
// token, then 401 insufficient_scope for the manifest, never 404.
func hubLikeRegistry(t *testing.T) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		challenge := `Bearer realm="` + srv.URL + `/token",service="registry.test"`
		switch {
		case r.URL.Path == "/token":
			_, _ = w.Write([]byte(`{"token":"anonymous","expires_in":300}`))
		case r.URL.Path == "/v2/":
			w.Header().Set("WWW-Authenticate", challenge)
			registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		default:
			w.Header().Set("WWW-Authenticate", challenge+`,scope="repository:library/nosuch:pull",error="insufficient_scope"`)
			registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestCLIErrorClasses runs one failure of each class through the CLI binary and checks the
// exit code, a key phrase of the message and the class of the --progress json "failed" event.
func TestCLIErrorClasses(t *testing.T) {
	t.Parallel()
	hello := fixtures.Hello()
	layer := hello.Images[0].Layers[len(hello.Images[0].Layers)-1]
	reg := testregistry.Start(t, testregistry.Options{Wrap: faultyRegistry(layer)})
	basic := testregistry.Start(t, testregistry.Options{BasicAuth: map[string]string{"alice": "s3cret"}})
	bearer := testregistry.Start(t, testregistry.Options{BasicAuth: map[string]string{"alice": "s3cret"}, BearerToken: true})
	tlsReg := testregistry.Start(t, testregistry.Options{TLS: true})
	hub, refused := hubLikeRegistry(t), testregistry.ClosedAddr(t)
	for _, repo := range []string{"app", "blobless", "corrupt"} {
		mustCLI(t, "--quiet", "oci:examples/hello:latest", "docker://"+reg.Host+"/"+repo+"/hello:v1")
	}
	fast := []string{"--retry-times", "1", "--retry-delay", "1ms"}
	dir := func() string { return "dir:" + filepath.Join(t.TempDir(), "out") }

	cases := []struct {
		name  string
		args  []string
		code  int
		class string // of the JSON "failed" event; "" when no copy starts
		want  []string
	}{
		{name: "missing tag", args: []string{"docker://" + reg.Host + "/app/hello:nope", dir()},
			code: 3, class: "not-found", want: []string{"manifest not found", "imgcopy list-tags"}},
		{name: "missing repository", args: []string{"docker://" + reg.Host + "/nosuch/repo:v1", dir()},
			code: 3, class: "not-found", want: []string{"repository or tag not found in " + reg.Host + "/nosuch/repo"}},
		{name: "list-tags of a missing repository", args: []string{"list-tags", "docker://" + reg.Host + "/nosuch/repo"},
			code: 3, want: []string{"repository " + reg.Host + "/nosuch/repo not found", "NAME_UNKNOWN", "check the registry and repository name"}},
		{name: "missing blob", args: []string{"docker://" + reg.Host + "/blobless/hello:v1", dir()},
			code: 3, class: "not-found", want: []string{"blob not found", layer.Digest.String(), "BLOB_UNKNOWN"}},
		{name: "bad password (Basic)", args: []string{"--src-creds", "alice:wrong", "docker://" + basic.Host + "/a/b:v1", dir()},
			code: 4, class: "auth", want: []string{"authentication required for " + basic.Host + "/a/b", "refused the user name and password given: check them"}},
		{name: "bad password (token server)", args: []string{"--src-creds", "alice:wrong", "docker://" + bearer.Host + "/a/b:v1", dir()},
			code: 4, class: "auth", want: []string{"authentication required", "/auth/token", "refused the user name and password given"}},
		{name: "push denied", args: []string{"oci:examples/hello:latest", "docker://" + reg.Host + "/denied/hello:v1"},
			code: 4, class: "auth", want: []string{"access denied to " + reg.Host + "/denied/hello", "DENIED"}},
		{name: "401 for a missing repository", args: []string{"docker://" + hub + "/library/nosuch:latest", dir()},
			code: 4, class: "auth", want: []string{"not found or not authorized", "may not exist", "check the name", "imgcopy login"}},
		{name: "inspect of a repository hidden by a 401", args: []string{"inspect", "docker://" + hub + "/library/nosuch:latest"},
			code: 4, want: []string{"not found or not authorized"}},
		{name: "rate limited after every retry", args: append(fast, "docker://"+reg.Host+"/throttled/hello:v1", dir()),
			code: 5, class: "rate-limited", want: []string{"rate limited by " + reg.Host + "/throttled/hello", "Retry-After: 0", "RateLimit-Remaining: 0;w=21600", "--retry-times"}},
		{name: "corrupted blob", args: []string{"docker://" + reg.Host + "/corrupt/hello:v1", dir()},
			code: 6, class: "verification", want: []string{"digest mismatch", layer.Digest.String()}},
		{name: "connection refused", args: append(fast, "docker://"+refused+"/a/b:v1", dir()),
			code: 7, class: "network", want: []string{"connection refused", "reachable"}},
		{name: "registry unavailable after every retry", args: append(fast, "docker://"+reg.Host+"/unavailable/hello:v1", dir()),
			code: 7, class: "network", want: []string{"503 Service Unavailable", "back-end storage is down"}},
		{name: "unknown certificate authority", args: append(fast, "oci:examples/hello:latest", "docker://"+tlsReg.Host+"/a/b:v1"),
			code: 7, class: "network", want: []string{"certificate", "--dest-cert-dir"}},
		{name: "malformed reference", args: []string{"docker://UPPER/Case:v1", dir()},
			code: 2, want: []string{"docker", "imgcopy --help"}},
		{name: "bad option value the library rejects", args: []string{"--dest-compress-format", "gzip", "--dest-compress-level", "12", "oci:examples/hello:latest", dir()},
			code: 2, class: "usage", want: []string{"level 12 out of range"}},
		{name: "zstd level out of range", args: []string{"--dest-compress-format", "zstd", "--dest-compress-level", "23", "oci:examples/hello:latest", dir()},
			code: 2, class: "usage", want: []string{"zstd compression level 23 out of range (1 to 22)"}},
		{name: "level without a format checked as gzip", args: []string{"--dest-compress-level", "99", "oci:examples/hello:latest", dir()},
			code: 2, class: "usage", want: []string{"gzip compression level 99 out of range (-2 to 9)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if tc.class != "" {
				args = append([]string{"--progress", "json"}, args...)
			}
			res := cli(t, args...)
			if res.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", res.code, tc.code, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q does not contain %q", res.stderr, w)
				}
			}
			for _, once := range []string{"listing tags of", "listing images"} {
				if strings.Count(res.stderr, once) > 1 {
					t.Errorf("stderr %q says %q more than once", res.stderr, once)
				}
			}
			if tc.class != "" {
				if got := failedClass(t, res.stdout); got != tc.class {
					t.Errorf("failed event class %q, want %q; stdout %q", got, tc.class, res.stdout)
				}
			}
		})
	}
}

// failedClass returns the class of the last --progress json line, which must be "failed".
func failedClass(t *testing.T, stdout string) string {
	t.Helper()
	var last map[string]any
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		last = map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
	}
	if last["event"] != "failed" || last["error"] == "" {
		t.Fatalf("last event %v, want failed with the error", last)
	}
	class, _ := last["class"].(string)
	return class
}
