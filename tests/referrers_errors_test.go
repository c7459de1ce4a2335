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
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
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

// TestReferrersCosignCopyTag checks a repository where `cosign copy` (v2.6.5) left its tag
// "sha256-<hex>" on the image itself, the tag the referrers tag schema reserves for the
// image's referrers index. Reading, the tag is no referrers index, which the spec says to
// read as no referrers: the copy goes on and brings the cosign tags. Writing, the spec says
// to report the failure rather than overwrite the tag: the error says so and what to do.
func TestReferrersCosignCopyTag(t *testing.T) {
	t.Parallel()
	const repo = "app/cosign-copied"
	// cosignCopied pushes the fixture as repo:v1 to reg, tagged with its own tag-schema tag.
	cosignCopied := func(reg *refRegistry) *fixtures.Layout {
		l, fx := e2eFixture(t, fixtures.Options{})
		e2eCopy(t, e2eRef(t, "docker://"+reg.host+"/"+repo+":v1"), fx, nil)
		pushManifest(t, reg.host, repo, manifest.FallbackTag(l.ManifestDigest), l.ManifestMIMEType, l.Manifest)
		return l
	}

	t.Run("source", func(t *testing.T) {
		t.Parallel()
		src := startRefRegistry(t, "distribution", nil)
		l := cosignCopied(src)
		sigTag := manifest.DigestTagPrefix(l.ManifestDigest) + "sig"
		sig := cosignSignature(t, src.host, repo, l.ManifestDigest, "application/vnd.dev.cosign.simplesigning.v1+json")
		pushManifest(t, src.host, repo, sigTag, imgspecv1.MediaTypeImageManifest, sig)
		dst := startRefRegistry(t, "distribution", nil)
		res := e2eCopy(t, e2eRef(t, "docker://"+dst.host+"/m/copied:v1"), e2eRef(t, "docker://"+src.host+"/"+repo+":v1"),
			&copier.Options{Referrers: true, DigestTags: true})
		if len(res.Related) != 1 || res.Related[0].Tag != sigTag {
			t.Errorf("related %+v, want only %s", res.Related, sigTag)
		}
		if got := getManifestRaw(t, dst.host, "m/copied", sigTag); !bytes.Equal(got, sig) {
			t.Errorf("%s differs at the destination", sigTag)
		}
	})

	t.Run("destination", func(t *testing.T) {
		t.Parallel()
		s := newRefScenario(t, "distribution")
		dst := startRefRegistry(t, "distribution", nil)
		cosignCopied(dst)
		_, err := copier.Image(context.Background(), e2eRef(t, "docker://"+dst.host+"/"+repo+":v2"), e2eRef(t, "docker://"+s.src.host+"/"+s.repo+":v1"),
			&copier.Options{Referrers: true})
		if err == nil {
			t.Fatal("copy succeeded")
		}
		if c := types.Classify(err); c != types.ClassOther || !errors.Is(err, types.ErrInvalidManifest) {
			t.Errorf("class %v, want %v and ErrInvalidManifest: %v", c, types.ClassOther, err)
		}
		for _, w := range []string{"itself (as cosign copy tags", "remove the tag"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not say %q: %v", w, err)
			}
		}
		if resp, _ := regDo(t, http.MethodHead, "http://"+dst.host+"/v2/"+repo+"/manifests/v2", nil, nil, 0); resp.StatusCode != http.StatusNotFound {
			t.Errorf("the destination's tag exists (status %d) after a failed copy", resp.StatusCode)
		}
	})
}
