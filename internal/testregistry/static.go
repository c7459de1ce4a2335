package testregistry

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// StaticImage is one manifest, with its blobs, that a static registry serves under a
// repository by tag and by digest.
type StaticImage struct {
	Repo, Tag string
	Manifest  []byte
	MIMEType  string
	// Digest is the manifest digest the registry announces (for signed schema1, the digest of
	// the signed payload, not of the served bytes).
	Digest digest.Digest
	Blobs  map[digest.Digest][]byte
}

// StartStatic starts a read-only registry (plain HTTP on 127.0.0.1) that serves images as
// given. It exists for what distribution v3 no longer accepts (Docker schema1 manifests,
// which old registries still serve); everything it was not given is 404.
func StartStatic(t testing.TB, images ...StaticImage) *Registry {
	t.Helper()
	rec := &recorder{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/v2/" {
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			return
		}
		for _, img := range images {
			prefix := "/v2/" + img.Repo + "/"
			rest, ok := strings.CutPrefix(r.URL.Path, prefix)
			if !ok {
				continue
			}
			if ref, ok := strings.CutPrefix(rest, "manifests/"); ok && (ref == img.Tag || ref == img.Digest.String()) {
				serveStatic(w, r, img.Manifest, img.MIMEType, img.Digest)
				return
			}
			if d, ok := strings.CutPrefix(rest, "blobs/"); ok {
				if b, ok := img.Blobs[digest.Digest(d)]; ok {
					serveStatic(w, r, b, "application/octet-stream", digest.Digest(d))
					return
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not served by this static registry"}]}`))
	})
	srv := httptest.NewUnstartedServer(rec.wrap(h))
	srv.Config.ReadHeaderTimeout = headerTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	return &Registry{Host: host, URL: "http://" + host, Requests: rec.snapshot, ResetRequests: rec.reset, Server: srv}
}

func serveStatic(w http.ResponseWriter, r *http.Request, b []byte, mimeType string, d digest.Digest) {
	w.Header().Set("Content-Type", mimeType)
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodGet {
		_, _ = bytes.NewReader(b).WriteTo(w)
	}
}
