package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// midUploadExpiry wraps a Bearer-protected registry: it refuses, as expired, the token of the
// first PATCH whose Content-Range starts at offset (a chunk in the middle of a blob), and that
// token only. It sums the bodies of the PATCHes it lets through.
type midUploadExpiry struct {
	host   string
	offset string // "1048576-"

	mu       sync.Mutex
	revoked  string
	refused  int
	accepted int64
}

func (m *midUploadExpiry) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		m.mu.Lock()
		if r.Method == http.MethodPatch && m.revoked == "" && auth != "" && strings.HasPrefix(r.Header.Get("Content-Range"), m.offset) {
			m.revoked = auth
		}
		refuse := auth != "" && auth == m.revoked
		if refuse {
			m.refused++
		} else if r.Method == http.MethodPatch {
			m.accepted += r.ContentLength
		}
		m.mu.Unlock()
		if !refuse {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+m.host+`/auth/token",service="`+m.host+`",error="invalid_token"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}`))
	})
}

// TestCLITokenExpiresMidUpload: a push whose token the registry refuses as expired in the
// middle of a chunked blob upload gets a new token and goes on where the registry stopped:
// exit 0, every byte sent once (the refused chunk brought none), the image verifies. Before,
// the copy failed with "authentication required" (exit 4).
func TestCLITokenExpiresMidUpload(t *testing.T) {
	t.Parallel()
	layout := filepath.Join(t.TempDir(), "src")
	const layerSize = 6 << 20
	writeBigLayout(t, layout, layerSize)
	exp := &midUploadExpiry{offset: "1048576-"}
	reg := testregistry.Start(t, testregistry.Options{BearerToken: true, Filesystem: true, Wrap: exp.wrap})
	exp.host = reg.Host
	dest := "docker://" + reg.Host + "/expiry/app:v1"
	res := cli(t, "--retry-delay", "1ms", "--upload-chunk-size", "1M", "--dest-tls-verify=false", "oci:"+layout+":v1", dest)
	if res.code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", res.code, res.stderr)
	}
	exp.mu.Lock()
	refused, accepted := exp.refused, exp.accepted
	exp.mu.Unlock()
	// The refused chunk, and at most one request of the config's upload that was under way
	// with the same token (both blobs go at once): a client that kept the expired token
	// would be refused again and again.
	if refused < 1 || refused > 2 {
		t.Errorf("%d requests refused, want 1 (or 2, with the config's upload at the same moment)", refused)
	}
	// The layer, and the config (a few hundred bytes), each sent once.
	if accepted < layerSize || accepted > layerSize+4096 {
		t.Errorf("%d bytes uploaded, want the %d of the layer once (and the config)", accepted, layerSize)
	}
	mustCLI(t, "verify", "--quiet", "--tls-verify=false", dest)
}

// TestCLISyncPushNotGranted: a sync into a registry whose token server lets the user pull but
// not push one of the destination repositories copies the others and fails that image with
// an auth error (exit 4) that names the repository and says the credentials were accepted but
// may not write there, not "authentication required".
func TestCLISyncPushNotGranted(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{})
	pushSingle(t, src.Host, "team/app", "v1", "app", "amd64")
	pushSingle(t, src.Host, "team/web", "v1", "web", "amd64")
	dst := testregistry.Start(t, testregistry.Options{BearerToken: true, BasicAuth: map[string]string{"alice": "s3cret"},
		Grant: func(_, repo string, actions []string) []string {
			if repo == "mirror/web" {
				return []string{"pull"}
			}
			return actions
		}})
	cfg := filepath.Join(t.TempDir(), "sync.yaml")
	if err := os.WriteFile(cfg, []byte(src.Host+":\n  tls-verify: false\n  images:\n    team/app: [v1]\n    team/web: [v1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := cli(t, "sync", "--config", cfg, "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", "docker://"+dst.Host+"/mirror")
	if res.code != 4 {
		t.Fatalf("exit %d, want 4; stderr:\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"access denied to " + dst.Host + "/mirror/web", "the credentials were accepted"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, res.stderr)
		}
	}
	if strings.Contains(res.stderr, "mirror/app:v1 [auth]") || strings.Contains(res.stderr, "run imgcopy login") {
		t.Errorf("stderr blames the wrong image or asks to log in:\n%s", res.stderr)
	}
	mustCLI(t, "verify", "--quiet", "--tls-verify=false", "--creds", "alice:s3cret", "docker://"+dst.Host+"/mirror/app:v1")
}
