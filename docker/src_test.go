package docker

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/types"
)

// serveImage answers ping, manifest and blob requests for img in repo "a/b" with tag "t".
func serveImage(img testImage, w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == "/v2/":
		return true
	case r.URL.Path == "/v2/a/b/manifests/t" || r.URL.Path == "/v2/a/b/manifests/"+img.digest.String():
		w.Header().Set("Content-Type", imgspecv1.MediaTypeImageManifest)
		w.Header().Set("Docker-Content-Digest", img.digest.String())
		_, _ = w.Write(img.manifest)
		return true
	}
	for _, b := range img.blobs() {
		if r.URL.Path == "/v2/a/b/blobs/"+digest.FromBytes(b).String() {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
			return true
		}
	}
	return false
}

func TestGetManifestAndBlob(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 7, "amd64")
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !serveImage(img, w, r) {
			writeRegistryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		}
	})
	ctx := testContext(t)
	pullImage(t, ctx, mustParse(t, "//"+srv.host+"/a/b:t"), anonSys(), []testImage{img}, nil)
	for _, r := range srv.requests() {
		if strings.Contains(r.Path, "/manifests/") {
			accept := strings.Join(r.Header.Values("Accept"), ",")
			for _, mt := range []string{imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.v2+json"} {
				if !strings.Contains(accept, mt) {
					t.Errorf("Accept %q lacks %s", accept, mt)
				}
			}
		}
	}
	// By digest too.
	pullImage(t, ctx, mustParse(t, "//"+srv.host+"/a/b@"+img.digest.String()), anonSys(), []testImage{img}, nil)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 8, "amd64")
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
		case strings.HasSuffix(r.URL.Path, "/manifests/missing"):
			writeRegistryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
		case serveImage(img, w, r):
		default:
			writeRegistryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		}
	})
	ctx := testContext(t)
	_, err := mustParse(t, "//"+srv.host+"/a/b:missing").NewImageSource(ctx, anonSys())
	if !errors.Is(err, types.ErrManifestNotFound) {
		t.Fatalf("error %v, want ErrManifestNotFound", err)
	}
	for _, want := range []string{"repository or tag not found", "MANIFEST_UNKNOWN: manifest unknown", srv.host + "/a/b"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	src, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, anonSys())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, _, err = src.GetBlob(ctx, types.BlobInfo{Digest: digest.FromString("nope"), Size: 4}, types.GetBlobOptions{})
	if !errors.Is(err, types.ErrBlobNotFound) || !strings.Contains(err.Error(), "BLOB_UNKNOWN") {
		t.Fatalf("error %v, want ErrBlobNotFound with BLOB_UNKNOWN", err)
	}
	if srv.count(http.MethodGet, "/blobs/") != 1 {
		t.Errorf("404 was retried")
	}
}

func TestManifestDigestChecks(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 9, "amd64")
	cases := []struct {
		name, ref, header string
		body              []byte
	}{
		{name: "body does not match requested digest", ref: "@" + img.digest.String(), body: append([]byte(" "), img.manifest...)},
		{name: "Docker-Content-Digest mismatch", ref: ":t", header: digest.FromString("other").String(), body: img.manifest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					return
				}
				if tc.header != "" {
					w.Header().Set("Docker-Content-Digest", tc.header)
				}
				w.Header().Set("Content-Type", imgspecv1.MediaTypeImageManifest)
				_, _ = w.Write(tc.body)
			})
			_, err := mustParse(t, "//"+srv.host+"/a/b"+tc.ref).NewImageSource(testContext(t), anonSys())
			if !errors.Is(err, types.ErrDigestMismatch) {
				t.Fatalf("error %v, want ErrDigestMismatch", err)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 10, "amd64")
	cases := []struct {
		name       string
		fail       func(w http.ResponseWriter)
		failures   int
		wantErr    bool
		wantTries  int
		wantDelays []time.Duration // nil: only the count is checked
	}{
		{name: "503 then success", fail: func(w http.ResponseWriter) { writeRegistryError(w, 503, "UNAVAILABLE", "try later") }, failures: 2, wantTries: 3},
		{name: "429 with Retry-After", fail: func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			writeRegistryError(w, 429, codeTooManyRequests, "slow down")
		}, failures: 1, wantTries: 2, wantDelays: []time.Duration{7 * time.Second}},
		{name: "408 then success", fail: func(w http.ResponseWriter) { w.WriteHeader(408) }, failures: 1, wantTries: 2},
		{name: "always 500 gives up", fail: func(w http.ResponseWriter) { writeRegistryError(w, 500, "UNKNOWN", "broken") }, failures: 100, wantErr: true, wantTries: 4},
		{name: "400 not retried", fail: func(w http.ResponseWriter) { writeRegistryError(w, 400, "NAME_INVALID", "bad name") }, failures: 100, wantErr: true, wantTries: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/manifests/") && int(n.Add(1)) <= tc.failures {
					tc.fail(w)
					return
				}
				serveImage(img, w, r)
			})
			rs := &recordingSleeper{}
			ctx := withSleeper(testContext(t), rs.sleep)
			_, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, anonSys())
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, wantErr %v", err, tc.wantErr)
			}
			if got := srv.count(http.MethodGet, "/manifests/"); got != tc.wantTries {
				t.Errorf("%d tries, want %d", got, tc.wantTries)
			}
			delays := rs.get()
			if len(delays) != tc.wantTries-1 {
				t.Errorf("%d back-offs, want %d", len(delays), tc.wantTries-1)
			}
			if tc.wantDelays != nil && !equalDurations(delays, tc.wantDelays) {
				t.Errorf("delays %v, want %v", delays, tc.wantDelays)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRetryTimesFromSystemContext(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	zero := 0
	sys := &types.SystemContext{NoCreds: true, RetryTimes: &zero}
	if _, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(testContext(t), sys); err == nil {
		t.Fatal("expected an error")
	}
	if got := srv.count(http.MethodGet, "/manifests/"); got != 1 {
		t.Errorf("%d tries with RetryTimes=0, want 1", got)
	}
}

func TestBlobResumeAfterCut(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 11, "amd64")
	layer := img.layers[0]
	ld := digest.FromBytes(layer)
	cases := []struct {
		name         string
		rangeStatus  int    // status for the Range request
		contentRange string // "" = correct
		closedRange  bool   // the open-ended range fails, so a closed one is asked for
		wantErr      string
	}{
		{name: "resumed", rangeStatus: http.StatusPartialContent},
		{name: "range ignored: the whole blob again", rangeStatus: http.StatusOK, closedRange: true},
		{name: "open-ended range refused (416), closed range served", rangeStatus: http.StatusRequestedRangeNotSatisfiable, closedRange: true},
		{name: "range ignored with another length", rangeStatus: http.StatusOK, contentRange: "short", wantErr: "returned the whole blob with"},
		{name: "not found on resume", rangeStatus: http.StatusNotFound, wantErr: "blob not found"},
		{name: "wrong Content-Range", rangeStatus: http.StatusPartialContent, contentRange: "bytes 1-9/9", wantErr: "does not start at offset"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cuts atomic.Int32
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v2/a/b/blobs/"+ld.String() {
					serveImage(img, w, r)
					return
				}
				rng := r.Header.Get("Range")
				if rng == "" && cuts.Add(1) == 1 {
					w.Header().Set("Content-Length", strconv.Itoa(len(layer)))
					_, _ = w.Write(layer[:len(layer)/2])
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler) // cut the connection mid-blob
				}
				if tc.rangeStatus == http.StatusOK { // a server that ignores Range
					body := layer
					if tc.contentRange == "short" {
						body = layer[1:]
					}
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					_, _ = w.Write(body)
					return
				}
				openEnded := strings.HasSuffix(rng, "-")
				if tc.rangeStatus == http.StatusRequestedRangeNotSatisfiable && openEnded {
					w.WriteHeader(tc.rangeStatus)
					return
				}
				if tc.rangeStatus != http.StatusPartialContent && tc.rangeStatus != http.StatusRequestedRangeNotSatisfiable {
					w.WriteHeader(tc.rangeStatus)
					return
				}
				first, _, _ := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
				start, _ := strconv.Atoi(first)
				cr := tc.contentRange
				if cr == "" {
					cr = "bytes " + strconv.Itoa(start) + "-" + strconv.Itoa(len(layer)-1) + "/" + strconv.Itoa(len(layer))
				}
				w.Header().Set("Content-Range", cr)
				w.WriteHeader(http.StatusPartialContent)
				_, _ = w.Write(layer[start:])
			})
			ctx := testContext(t)
			src, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, anonSys())
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: ld, Size: int64(len(layer))}, types.GetBlobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, layer) {
				t.Fatalf("read %d bytes, err %v", len(got), err)
			}
			var ranges []string
			for _, r := range srv.requests() {
				if r.Path == "/v2/a/b/blobs/"+ld.String() {
					ranges = append(ranges, r.Header.Get("Range"))
				}
			}
			openEnded := "bytes=" + strconv.Itoa(len(layer)/2) + "-"
			want := []string{"", openEnded}
			if tc.closedRange {
				want = append(want, openEnded+strconv.Itoa(len(layer)-1))
			}
			if !slices.Equal(ranges, want) {
				t.Errorf("blob requests with Range %q, want %q", ranges, want)
			}
		})
	}
}

func TestCorruptedBlobFailsVerification(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 12, "amd64")
	layer := img.layers[0]
	ld := digest.FromBytes(layer)
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/a/b/blobs/"+ld.String() {
			bad := bytes.Clone(layer)
			bad[len(bad)/3] ^= 0x01
			_, _ = w.Write(bad)
			return
		}
		serveImage(img, w, r)
	})
	ctx := testContext(t)
	src, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, anonSys())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: ld, Size: int64(len(layer))}, types.GetBlobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	vr, err := verify.NewReader(rc, ld, int64(len(layer)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, vr)
	var mm types.DigestMismatchError
	if !errors.Is(err, types.ErrDigestMismatch) || !errors.As(err, &mm) || mm.Expected != ld.String() {
		t.Fatalf("error %v, want a DigestMismatchError for %s", err, ld)
	}
}

func TestRedirectDropsAuthorization(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 13, "amd64")
	layer := img.layers[1]
	ld := digest.FromBytes(layer)
	storage := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(layer)))
		_, _ = w.Write(layer)
	})
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
			writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		if r.URL.Path == "/v2/a/b/blobs/"+ld.String() {
			http.Redirect(w, r, storage.URL+"/bucket/blob?X-Signature=SECRETSIG", http.StatusTemporaryRedirect)
			return
		}
		serveImage(img, w, r)
	})
	ctx := testContext(t)
	sys := &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "s3cret"}}
	src, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	readBlob(t, ctx, src, layer)
	sreqs := storage.requests()
	if len(sreqs) != 1 || sreqs[0].Auth != "" || sreqs[0].RawQuery != "X-Signature=SECRETSIG" {
		t.Fatalf("storage requests %+v, want one without Authorization", sreqs)
	}
	var sawAuth bool
	for _, r := range srv.requests() {
		sawAuth = sawAuth || (r.Path == "/v2/a/b/blobs/"+ld.String() && r.Auth != "")
	}
	if !sawAuth {
		t.Errorf("the registry itself did not get the Authorization header")
	}
}

// TestForeignLayerFromRegistryOnly asks the registry for a foreign layer and never its URLs:
// those are for the copy engine's fetcher, with the TLS rules of each URL's host (a registry's
// plain-HTTP or skip-verify setting must not carry over to another host).
func TestForeignLayerFromRegistryOnly(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 14, "amd64")
	layer := img.layers[0]
	ld := digest.FromBytes(layer)
	external := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(layer) })
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) { serveImage(img, w, r) })
	ctx := testContext(t)
	src, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, anonSys())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: ld, Size: int64(len(layer)), URLs: []string{external.URL + "/layer"}}, types.GetBlobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, layer) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if n := srv.count(http.MethodGet, "/blobs/"); n != 1 {
		t.Errorf("%d registry blob requests, want 1", n)
	}
	if n := len(external.requests()); n != 0 {
		t.Errorf("the source fetched the layer's URL %d time(s); that is the copy engine's fetcher's job", n)
	}
}
