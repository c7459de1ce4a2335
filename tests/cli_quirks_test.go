package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// refuseMethod wraps a registry so that requests with method to paths containing part get
// status (and no body), as registries do with HTTP methods they do not serve.
func refuseMethod(method, part string, status int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == method && strings.Contains(r.URL.Path, part) {
				w.WriteHeader(status)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestCLIManifestHEADRefused: registries that refuse HEAD of manifests (Nexus, some proxies:
// 400, 405 or 501) are still synced between (a re-run finds the mirror up to date) and deleted
// in: the digest comes from a GET, as with containerd and crane. A missing tag is still "not
// found" (exit 3).
func TestCLIManifestHEADRefused(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotImplemented} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			src := testregistry.Start(t, testregistry.Options{Wrap: refuseMethod(http.MethodHead, "/manifests/", status)})
			dst := testregistry.Start(t, testregistry.Options{Wrap: refuseMethod(http.MethodHead, "/manifests/", status)})
			mustCLI(t, "--quiet", "oci:examples/hello:latest", "docker://"+src.Host+"/team/hello:v1")

			res := mustCLI(t, "sync", "--src", "docker", "--dest", "docker", src.Host+"/team/hello", dst.Host+"/mirror")
			if !strings.Contains(res.stdout, "1 copied") {
				t.Errorf("sync did not copy the image:\n%s", res.stdout)
			}
			mustCLI(t, "verify", "--quiet", "docker://"+dst.Host+"/mirror/hello:v1")
			again := mustCLI(t, "sync", "--src", "docker", "--dest", "docker", src.Host+"/team/hello", dst.Host+"/mirror")
			if !strings.Contains(again.stdout, "1 up-to-date") {
				t.Errorf("second sync did not find the mirror up to date:\n%s", again.stdout)
			}

			mustCLI(t, "delete", "docker://"+src.Host+"/team/hello:v1")
			if r := cli(t, "delete", "docker://"+src.Host+"/team/hello:v1"); r.code != 3 {
				t.Errorf("deleting a deleted tag: exit %d, want 3 (not found)\n%s", r.code, r.stderr)
			}
		})
	}
}

// redirectHeldBlobs wraps a registry so that a request with method for a blob it holds
// answers 307 to the URL that to returns for the request and the blob; other answers pass.
func redirectHeldBlobs(method string, to func(r *http.Request, blob []byte) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != method || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			http.Redirect(w, r, to(r, rec.Body.Bytes()), http.StatusTemporaryRedirect)
		})
	}
}

// redirectBlobHEADs wraps a registry so that a HEAD of a blob it holds answers 307 to storage
// that refuses HEAD with 403, as S3 or GCS do with a URL signed for GET only or expired.
func redirectBlobHEADs(t *testing.T) func(http.Handler) http.Handler {
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden) // SignatureDoesNotMatch; a HEAD answer has no body
	}))
	t.Cleanup(storage.Close)
	return redirectHeldBlobs(http.MethodHead, func(*http.Request, []byte) string {
		return storage.URL + "/blob?X-Amz-Signature=for-GET"
	})
}

// TestCLIBlobHEADRefused: a destination that refuses HEAD of blobs (405), or redirects it to
// storage that refuses it (403), still gets images whose blobs it may hold already (a second
// push of the image in another manifest format): the blobs are uploaded again rather than the
// copy failing, or the refusal passing for a lack of access (exit 4).
func TestCLIBlobHEADRefused(t *testing.T) {
	t.Parallel()
	cases := map[string]func(http.Handler) http.Handler{
		"405":             refuseMethod(http.MethodHead, "/blobs/", http.StatusMethodNotAllowed),
		"redirect to 403": redirectBlobHEADs(t),
	}
	for name, wrap := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, testregistry.Options{Wrap: wrap})
			mustCLI(t, "--quiet", "oci:examples/hello:latest", "docker://"+reg.Host+"/team/hello:v1")
			mustCLI(t, "--quiet", "--format", "v2s2", "oci:examples/hello:latest", "docker://"+reg.Host+"/team/hello:v2")
			mustCLI(t, "--quiet", "docker://"+reg.Host+"/team/hello:v2", "docker://"+reg.Host+"/team/copy:v2")
			for _, tag := range []string{"hello:v1", "hello:v2", "copy:v2"} {
				mustCLI(t, "verify", "--quiet", "docker://"+reg.Host+"/team/"+tag)
			}
		})
	}
}

// answerReferrers wraps a registry so that its referrers API answers status with body of
// type contentType.
func answerReferrers(status int, contentType, body string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/referrers/") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		})
	}
}

// TestCLIReferrersAPIAnswersOddly: registries without the referrers API that answer its path
// with an HTML page (200; repository managers, proxies) or refuse it with 400 still have their
// referrers read from the tag schema, by `imgcopy referrers` and by a copy with --referrers,
// as oras and regclient read them, instead of failing the copy.
func TestCLIReferrersAPIAnswersOddly(t *testing.T) {
	t.Parallel()
	cases := map[string]func(http.Handler) http.Handler{
		"HTML page": answerReferrers(http.StatusOK, "text/html; charset=utf-8", "<!doctype html><html><body>Repository Manager</body></html>"),
		"400":       answerReferrers(http.StatusBadRequest, "application/json", `{"errors":[{"code":"UNSUPPORTED","message":"unsupported"}]}`),
	}
	for name, wrap := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := startRefRegistry(t, "distribution", wrap)
			l, fx := e2eFixture(t, fixtures.Options{})
			e2eCopy(t, e2eRef(t, "docker://"+src.host+"/app/signed:v1"), fx, nil)
			subject := imgspecv1.Descriptor{MediaType: l.ManifestMIMEType, Digest: l.ManifestDigest, Size: int64(len(l.Manifest))}
			sig := pushArtifact(t, src, "app/signed", "sig", subject, refTypeSig)
			image := "docker://" + src.host + "/app/signed:v1"

			if out := mustCLI(t, "referrers", image).stdout; !strings.Contains(out, sig.desc.Digest.String()) {
				t.Errorf("imgcopy referrers does not list the signature %s:\n%s", sig.desc.Digest, out)
			}
			dst := startRefRegistry(t, "distribution", nil)
			mustCLI(t, "--quiet", "--referrers", image, "docker://"+dst.host+"/mirror/signed:v1")
			if got := rawReferrers(t, dst.host, "mirror/signed", subject.Digest); len(got) != 1 || got[0] != sig.desc.Digest.String() {
				t.Errorf("referrers at the destination: %v, want [%s]", got, sig.desc.Digest)
			}
		})
	}
}

// immutableTags wraps a registry so that a manifest PUT to a tag pushed already is refused
// with status and the registry error code and message, as registries with immutable tags do.
func immutableTags(status int, code, message string) func(http.Handler) http.Handler {
	byTag := regexp.MustCompile(`^/v2/.+/manifests/([^/:]+)$`)
	var mu sync.Mutex
	pushed := map[string]bool{}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && byTag.MatchString(r.URL.Path) {
				mu.Lock()
				again := pushed[r.URL.Path]
				pushed[r.URL.Path] = true
				mu.Unlock()
				if again {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, message)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestCLIImmutableTag: moving an immutable tag to another image is refused by ECR (400
// TAG_INVALID) and Harbor (412 PRECONDITION) with the messages they send, and by Docker Hub
// with a 403 (its message here is ours, hub-feedback#2466 does not quote it): the error says the tag is
// immutable, with the registry's words, and is not an authorization failure (exit 1, not 4,
// whose advice about credentials would mislead). Copying the image the tag already holds
// succeeds, as a re-run of a mirror does.
func TestCLIImmutableTag(t *testing.T) {
	t.Parallel()
	cases := map[string]func(http.Handler) http.Handler{
		"ECR":        immutableTags(http.StatusBadRequest, "TAG_INVALID", "The image tag 'v1' already exists in the 'team/hello' repository and cannot be overwritten because the repository is immutable."),
		"Harbor":     immutableTags(http.StatusPreconditionFailed, "PRECONDITION", "Failed to process request due to 'hello:v1' configured as immutable."),
		"Docker Hub": immutableTags(http.StatusForbidden, "DENIED", "tag v1 is immutable"),
	}
	for name, wrap := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, testregistry.Options{Wrap: wrap})
			dest := "docker://" + reg.Host + "/team/hello:v1"
			mustCLI(t, "--quiet", "oci:examples/hello:latest", dest)
			res := cli(t, "--quiet", "--format", "v2s2", "oci:examples/hello:latest", dest)
			if res.code != 1 || !strings.Contains(res.stderr, "tag v1 is immutable in "+reg.Host+"/team/hello") || strings.Contains(res.stderr, "credentials") {
				t.Errorf("moving the tag: exit %d, want 1, and an error that says the tag is immutable:\n%s", res.code, res.stderr)
			}
			mustCLI(t, "--quiet", "oci:examples/hello:latest", dest)
			mustCLI(t, "verify", "--quiet", dest)
		})
	}
}

// pageTagsWithTokenRel wraps a registry so that its tag list comes one tag per page (as if
// the client had asked n=1) with Link headers in RFC 8288's token form, rel=next.
func pageTagsWithTokenRel(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/tags/list") {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		q.Set("n", "1")
		r.URL.RawQuery = q.Encode()
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if l := w.Header().Get("Link"); l != "" {
			w.Header().Set("Link", strings.Replace(l, `rel="next"`, "rel=next", 1))
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// TestCLITagListTokenRel: a tag list paginated with Link: <...>; rel=next (unquoted, as RFC
// 8288 allows) is read to its end by list-tags and sync, not cut after the first page.
func TestCLITagListTokenRel(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{Wrap: pageTagsWithTokenRel})
	dst := testregistry.Start(t, testregistry.Options{})
	for _, tag := range []string{"v1", "v2", "v3"} {
		mustCLI(t, "--quiet", "oci:examples/hello:latest", "docker://"+src.Host+"/team/hello:"+tag)
	}
	out := mustCLI(t, "list-tags", "docker://"+src.Host+"/team/hello").stdout
	for _, tag := range []string{"v1", "v2", "v3"} {
		if !strings.Contains(out, `"`+tag+`"`) {
			t.Errorf("list-tags does not list %s:\n%s", tag, out)
		}
	}
	if res := mustCLI(t, "sync", "--src", "docker", "--dest", "docker", src.Host+"/team/hello", dst.Host+"/mirror"); !strings.Contains(res.stdout, "3 copied") {
		t.Errorf("sync did not copy the 3 tags:\n%s", res.stdout)
	}
}

// expiringStorage is blob storage behind a registry's redirects whose signed URLs can expire:
// a URL with expired=1 gets S3's 403 AccessDenied "Request has expired".
type expiringStorage struct {
	*httptest.Server
	mu      sync.Mutex
	blobs   map[string][]byte
	expired func(n int) bool // whether redirect number n (from 1) hands out an expired URL
	n       int
}

func startExpiringStorage(t *testing.T, expired func(n int) bool) *expiringStorage {
	s := &expiringStorage{blobs: map[string][]byte{}, expired: expired}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("expired") == "1" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
			return
		}
		s.mu.Lock()
		b, ok := s.blobs[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// wrap redirects the registry's blob GETs to the storage.
func (s *expiringStorage) wrap(next http.Handler) http.Handler {
	return redirectHeldBlobs(http.MethodGet, func(r *http.Request, blob []byte) string {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.blobs[r.URL.Path] = blob
		s.n++
		q := "?X-Amz-Signature=SIGNED-SECRET"
		if s.expired(s.n) {
			q += "&expired=1"
		}
		return s.URL + r.URL.Path + q
	})(next)
}

// TestCLIExpiredBlobRedirect: a registry redirects blob downloads to storage whose signed URL
// has expired by the time it is used (403 AccessDenied "Request has expired"). The download is
// asked of the registry again, which hands out a fresh URL, and the copy succeeds. When every
// URL is refused, the error blames the storage (with its XML error), not the credentials
// (exit 1, not 4), and neither it nor the --debug log names the signed URL.
func TestCLIExpiredBlobRedirect(t *testing.T) {
	t.Parallel()
	t.Run("first URL of each blob expired", func(t *testing.T) {
		t.Parallel()
		storage := startExpiringStorage(t, func(n int) bool { return n%2 == 1 })
		reg := testregistry.Start(t, testregistry.Options{Wrap: storage.wrap})
		image := "docker://" + reg.Host + "/team/hello:v1"
		mustCLI(t, "--quiet", "oci:examples/hello:latest", image)
		dest := "oci:" + t.TempDir() + "/layout:v1"
		mustCLI(t, "--quiet", "--retry-delay", "10ms", image, dest)
		mustCLI(t, "verify", "--quiet", dest)
	})
	t.Run("every URL expired", func(t *testing.T) {
		t.Parallel()
		storage := startExpiringStorage(t, func(int) bool { return true })
		reg := testregistry.Start(t, testregistry.Options{Wrap: storage.wrap})
		image := "docker://" + reg.Host + "/team/hello:v1"
		mustCLI(t, "--quiet", "oci:examples/hello:latest", image)
		res := cli(t, "--debug", "--retry-times", "1", "--retry-delay", "10ms", image, "oci:"+t.TempDir()+"/layout:v1")
		want := "redirected the download to storage at " + strings.TrimPrefix(storage.URL, "http://") + ", which refused it"
		if res.code != 1 || !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, "AccessDenied: Request has expired") ||
			strings.Contains(res.stderr, "SIGNED-SECRET") || strings.Contains(res.stderr, "credentials") {
			t.Errorf("exit %d, want 1 and an error saying %q with the storage's words, without the signed URL or advice about credentials:\n%s", res.code, want, res.stderr)
		}
	})
}

// refuseOCITypes wraps a registry so that it refuses, as older Quay and ECR did, manifest PUTs
// of OCI indexes and of manifests with a subject or an artifactType (400 MANIFEST_INVALID).
func refuseOCITypes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			if r.Header.Get("Content-Type") == imgspecv1.MediaTypeImageIndex || bytes.Contains(b, []byte(`"subject"`)) || bytes.Contains(b, []byte(`"artifactType"`)) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]}`)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// TestCLIOCITypesRefused: a registry that refuses OCI indexes and artifacts (older Quay and
// ECR) gets an error naming the refused type and the registry's answer, with the advice that
// --format v2s2 converts images; with it the multi-platform image is copied.
func TestCLIOCITypesRefused(t *testing.T) {
	t.Parallel()
	src := startRefRegistry(t, "distribution", nil)
	_, multi := e2eFixture(t, fixtures.Options{Platforms: []string{"linux/amd64", "linux/arm64"}})
	e2eCopy(t, e2eRef(t, "docker://"+src.host+"/app/multi:v1"), multi, nil)
	l, single := e2eFixture(t, fixtures.Options{})
	e2eCopy(t, e2eRef(t, "docker://"+src.host+"/app/signed:v1"), single, nil)
	pushArtifact(t, src, "app/signed", "sig", imgspecv1.Descriptor{MediaType: l.ManifestMIMEType, Digest: l.ManifestDigest, Size: int64(len(l.Manifest))}, refTypeSig)
	dst := testregistry.Start(t, testregistry.Options{Wrap: refuseOCITypes})

	for _, args := range [][]string{
		{"--all", "docker://" + src.host + "/app/multi:v1", "docker://" + dst.Host + "/mirror/multi:v1"},
		{"--referrers", "docker://" + src.host + "/app/signed:v1", "docker://" + dst.Host + "/mirror/signed:v1"},
	} {
		res := cli(t, args...)
		if res.code != 1 || !strings.Contains(res.stderr, "rejected: PUT") || !strings.Contains(res.stderr, "MANIFEST_INVALID") ||
			!strings.Contains(res.stderr, "--format v2s2 converts images to Docker types") {
			t.Errorf("imgcopy %s: exit %d, want 1 with the refused type, the registry's answer and the advice:\n%s", strings.Join(args, " "), res.code, res.stderr)
		}
	}
	mustCLI(t, "--quiet", "--all", "--format", "v2s2", "docker://"+src.host+"/app/multi:v1", "docker://"+dst.Host+"/mirror/multi:v1")
	mustCLI(t, "verify", "--quiet", "docker://"+dst.Host+"/mirror/multi:v1")
}

// TestCLIDeleteRefused: a registry that does not delete through the registry API (CNCF
// distribution without storage.delete.enabled, Docker Hub, GHCR: 405 UNSUPPORTED) gets an
// error that says so, naming the image once, and the image stays.
func TestCLIDeleteRefused(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodDelete {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			fmt.Fprint(w, `{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}`)
		})
	}})
	image := "docker://" + reg.Host + "/team/hello:v1"
	mustCLI(t, "--quiet", "oci:examples/hello:latest", image)
	res := cli(t, "delete", image)
	if res.code != 1 || !strings.Contains(res.stderr, "the registry does not allow deleting images through the registry API") ||
		!strings.Contains(res.stderr, "UNSUPPORTED") || strings.Count(res.stderr, "deleting "+image) != 1 {
		t.Errorf("delete: exit %d, want 1 and an error that names the image once and says the registry does not delete:\n%s", res.code, res.stderr)
	}
	mustCLI(t, "verify", "--quiet", image)
}

// TestCLIUploadRequestTooLarge: a registry behind a proxy that refuses request bodies over
// 16 KiB (413 with an HTML page, as Cloudflare and nginx answer) fails a push of a larger
// layer with advice to upload in chunks; with --upload-chunk-size under the limit the push
// succeeds.
func TestCLIUploadRequestTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 16 << 10
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (r.Method == http.MethodPatch || r.Method == http.MethodPut) && (r.ContentLength < 0 || r.ContentLength > limit) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				fmt.Fprint(w, "<html><head><title>413 Request Entity Too Large</title></head><body>nginx</body></html>")
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	image := "docker://" + reg.Host + "/team/hello:v1"
	res := cli(t, "oci:examples/hello:latest", image)
	if res.code != 1 || !strings.Contains(res.stderr, "413 Request Entity Too Large") || !strings.Contains(res.stderr, "upload in smaller chunks (imgcopy --upload-chunk-size)") {
		t.Errorf("push: exit %d, want 1 with the advice to upload in chunks:\n%s", res.code, res.stderr)
	}
	mustCLI(t, "--quiet", "--upload-chunk-size", "8KiB", "oci:examples/hello:latest", image)
	mustCLI(t, "verify", "--quiet", image)
}

// TestCLIRegistryRewritesManifest: a registry (or a proxy in front of it) that stores a
// manifest pushed by tag re-indented, so that the tag names other bytes than the copy sent,
// answers with their Docker-Content-Digest; the copy fails as a verification failure (exit
// 6), as regclient does, instead of reporting a byte-exact copy.
func TestCLIRegistryRewritesManifest(t *testing.T) {
	t.Parallel()
	byTag := regexp.MustCompile(`^/v2/.+/manifests/[^/:]+$`)
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && byTag.MatchString(r.URL.Path) {
				b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
				var out bytes.Buffer
				if err == nil {
					err = json.Indent(&out, b, "", "   ")
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				r.Body, r.ContentLength = io.NopCloser(&out), int64(out.Len())
			}
			next.ServeHTTP(w, r)
		})
	}})
	res := cli(t, "oci:examples/hello:latest", "docker://"+reg.Host+"/team/hello:v1")
	if res.code != 6 || !strings.Contains(res.stderr, "it stored other bytes than those sent") {
		t.Errorf("copy: exit %d, want 6 and an error saying the registry stored other bytes:\n%s", res.code, res.stderr)
	}
}
