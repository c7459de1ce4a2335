package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

// faultProxy serves host through a proxy that lets fault answer a request first (it returns
// true when it did), and returns the proxy's host.
func faultProxy(t *testing.T, host string, fault func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fault(w, r) {
			p.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestReferrersCopyFailures checks what a script sees when an attachment cannot be copied: the
// copy fails with an error of the right class that names the artifact and says the image was
// not tagged, and the destination's tag is indeed not there.
func TestReferrersCopyFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		kind string // the source registry
		// srcFault and destFault, when set, answer some requests to the source or destination.
		srcFault, destFault func(s *refScenario) func(w http.ResponseWriter, r *http.Request) bool
		class               types.ErrorClass
		is                  error
		says                []string
	}{
		{"destination refuses the artifact", "distribution", nil,
			func(s *refScenario) func(w http.ResponseWriter, r *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") {
						return false
					}
					b, _ := io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(b))
					if !bytes.Contains(b, []byte(`"subject"`)) {
						return false
					}
					registryError(w, http.StatusBadRequest, "MANIFEST_INVALID", "artifacts not accepted")
					return true
				}
			},
			types.ClassOther, nil, []string{"refuses the artifact (application/", "artifacts not accepted"}},
		{"referrer's blob missing at the source", "distribution",
			func(s *refScenario) func(w http.ResponseWriter, r *http.Request) bool {
				missing := digest.FromString("sig of " + s.imageDesc.Digest.String())
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !strings.HasSuffix(r.URL.Path, "/blobs/"+missing.String()) {
						return false
					}
					registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
					return true
				}
			}, nil,
			types.ClassNotFound, types.ErrBlobNotFound, []string{"blob unknown"}},
		{"malformed referrers list", "ggcr",
			func(s *refScenario) func(w http.ResponseWriter, r *http.Request) bool {
				return func(w http.ResponseWriter, r *http.Request) bool {
					if !strings.Contains(r.URL.Path, "/referrers/") {
						return false
					}
					w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
					io.WriteString(w, `{"schemaVersion":2,"manifests":[{"digest":"sha256:`)
					return true
				}
			}, nil,
			types.ClassOther, types.ErrInvalidManifest, []string{"invalid JSON"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newRefScenario(t, tc.kind)
			src, dst := s.src.host, startRefRegistry(t, "distribution", nil).host
			if tc.srcFault != nil {
				src = faultProxy(t, src, tc.srcFault(s))
			}
			if tc.destFault != nil {
				dst = faultProxy(t, dst, tc.destFault(s))
			}
			_, err := copier.Image(context.Background(), e2eRef(t, "docker://"+dst+"/m/signed:v1"), e2eRef(t, "docker://"+src+"/"+s.repo+":v1"),
				&copier.Options{Referrers: true})
			if err == nil {
				t.Fatal("copy succeeded")
			}
			if c := types.Classify(err); c != tc.class {
				t.Errorf("class %v, want %v: %v", c, tc.class, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error is not %v: %v", tc.is, err)
			}
			for _, w := range append(tc.says, "not tagged") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
			if resp, _ := regDo(t, http.MethodHead, "http://"+dst+"/v2/m/signed/manifests/v1", nil, nil, 0); resp.StatusCode != http.StatusNotFound {
				t.Errorf("the destination's tag exists (status %d) after a failed copy", resp.StatusCode)
			}
		})
	}
}
