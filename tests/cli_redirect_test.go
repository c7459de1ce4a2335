package tests

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// blobStorage is an object store that blob GETs are redirected to: it serves the blobs the
// registry would and records every Authorization header it receives.
type blobStorage struct {
	*httptest.Server
	mu    sync.Mutex
	blobs map[string][]byte
	auths []string // Authorization headers received
	gets  int
}

func startBlobStorage(t *testing.T) *blobStorage {
	s := &blobStorage{blobs: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.gets++
		if a := r.Header.Get("Authorization"); a != "" {
			s.auths = append(s.auths, a)
		}
		b, ok := s.blobs[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok || r.URL.Query().Get("X-Amz-Signature") == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// redirectBlobs wraps a registry so that blob GETs of repositories under redirect/ answer 307
// to the storage at base, with a signed-URL query; it records the bearer tokens it sees.
func redirectBlobs(s *blobStorage, base *string, tokens *sync.Map) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				tokens.Store(a, true)
			}
			m := apiPath.FindStringSubmatch(r.URL.Path)
			if r.Method != http.MethodGet || m == nil || m[2] != "blobs" || !strings.HasPrefix(m[1], "redirect/") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			s.mu.Lock()
			s.blobs[m[3]] = rec.Body.Bytes()
			s.mu.Unlock()
			http.Redirect(w, r, *base+"/"+m[3]+"?X-Amz-Credential=AKIASECRETCRED&X-Amz-Signature=deadbeefSIGNATURE", http.StatusTemporaryRedirect)
		})
	}
}

// TestCLIRedirectedBlobs pulls through a registry (Basic auth, and Bearer tokens from a refresh
// token) that redirects blob GETs to storage on another host (localhost instead of 127.0.0.1,
// and another port of 127.0.0.1): the blobs arrive, the storage never gets the Authorization
// header, and the --debug output holds neither the password, its base64 form, the bearer or
// refresh tokens, nor the signed URL's query.
func TestCLIRedirectedBlobs(t *testing.T) {
	t.Parallel()
	const user, password, refresh = "alice", "pa55-w0rd-SECRET", "refresh-TOKEN-SECRET"
	for _, auth := range []string{"basic", "bearer"} {
		for _, storageHost := range []string{"localhost", "127.0.0.1"} {
			t.Run(auth+" to "+storageHost, func(t *testing.T) {
				t.Parallel()
				storage := startBlobStorage(t)
				base := strings.Replace(storage.URL, "127.0.0.1", storageHost, 1)
				var tokens sync.Map
				reg := testregistry.Start(t, testregistry.Options{
					BasicAuth: map[string]string{user: password}, BearerToken: auth == "bearer",
					IdentityTokens: map[string]string{refresh: user}, Wrap: redirectBlobs(storage, &base, &tokens),
				})
				home := t.TempDir()
				authfile := filepath.Join(home, "auth.json")
				entry := map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
				if auth == "bearer" {
					entry = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":")), "identitytoken": refresh}
				}
				b, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: entry}})
				if err := os.WriteFile(authfile, b, 0o600); err != nil {
					t.Fatal(err)
				}
				image := "docker://" + reg.Host + "/redirect/hello:v1"
				mustCLI(t, "--quiet", "--authfile", authfile, "oci:examples/hello:latest", image)

				dest := "oci:" + filepath.Join(t.TempDir(), "layout") + ":v1"
				c := startChild(t, home, nil, "--debug", "--authfile", authfile, image, dest)
				code, _, stderr := c.wait(time.Minute)
				if code != 0 {
					t.Fatalf("exit %d; stderr:\n%s", code, stderr)
				}
				mustCLI(t, "verify", "--quiet", dest)
				storage.mu.Lock()
				gets, auths := storage.gets, storage.auths
				storage.mu.Unlock()
				if gets == 0 {
					t.Fatalf("no blob was fetched from the storage")
				}
				if len(auths) > 0 {
					t.Errorf("the storage on another host got Authorization headers: %q", auths)
				}
				secrets := []string{password, base64.StdEncoding.EncodeToString([]byte(user + ":" + password)), refresh,
					"AKIASECRETCRED", "deadbeefSIGNATURE"}
				tokens.Range(func(k, _ any) bool {
					secrets = append(secrets, k.(string))
					return true
				})
				if auth == "bearer" && len(secrets) == 5 {
					t.Fatalf("the registry saw no bearer token")
				}
				out := c.stdout.String() + stderr
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("--debug output contains the secret %.20q…", s)
					}
				}
			})
		}
	}
}
