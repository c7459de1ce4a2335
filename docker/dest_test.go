package docker

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// uploadHandler implements the upload endpoints of repo a/b: POST gives Location
// (relative unless absolute is set), PATCH reads the body, PUT ?digest= completes.
type uploadHandler struct {
	absolute   bool
	location   string // overrides the Location of POST responses
	failPatch  atomic.Int32
	failStatus int    // status of failed PATCHes (0: 503)
	retryAfter string // Retry-After of failed PATCHes, which are then 429s
	// loseFinish makes the first PUT ?digest= complete the upload but drop the connection
	// before answering; the session is then unknown (404), and HEAD finds the blob.
	loseFinish bool
	finished   atomic.Int32
	sessions   atomic.Int32
	got        atomic.Value // []byte of the last completed upload
	mountReply int          // status for POST ?mount= (0: 202)
}

func (u *uploadHandler) serve(w http.ResponseWriter, r *http.Request, base string) {
	switch {
	case r.URL.Path == "/v2/":
	case r.Method == http.MethodPost && r.URL.Path == "/v2/a/b/blobs/uploads/":
		if r.URL.Query().Get("mount") != "" && u.mountReply == http.StatusCreated {
			w.WriteHeader(http.StatusCreated)
			return
		}
		n := u.sessions.Add(1)
		loc := "/v2/a/b/blobs/uploads/session" + string(rune('0'+n))
		if u.absolute {
			loc = base + loc
		}
		if u.location != "" {
			loc = u.location
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPatch:
		if u.failPatch.Add(-1) >= 0 {
			if u.failStatus == http.StatusNotFound {
				writeRegistryError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
				return
			}
			if u.retryAfter != "" {
				w.Header().Set("Retry-After", u.retryAfter)
				writeRegistryError(w, http.StatusTooManyRequests, codeTooManyRequests, "slow down")
				return
			}
			writeRegistryError(w, cmp.Or(u.failStatus, http.StatusServiceUnavailable), "UNAVAILABLE", "busy")
			return
		}
		b, _ := io.ReadAll(r.Body)
		u.got.Store(b)
		w.Header().Set("Location", r.URL.Path+"?_state=x")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/uploads/") && u.loseFinish && u.finished.Load() > 0:
		writeRegistryError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/uploads/") && u.loseFinish:
		u.finished.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	case r.Method == http.MethodHead && u.finished.Load() > 0:
		b, _ := u.got.Load().([]byte)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/uploads/"):
		b, _ := u.got.Load().([]byte)
		if r.URL.Query().Get("digest") != digest.FromBytes(b).String() || r.URL.Query().Get("_state") != "x" {
			writeRegistryError(w, http.StatusBadRequest, "DIGEST_INVALID", "digest mismatch")
			return
		}
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodHead:
		w.WriteHeader(http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func newUploadServer(t *testing.T, u *uploadHandler) *fakeServer {
	var srv *fakeServer
	srv = newFakeServer(t, func(w http.ResponseWriter, r *http.Request) { u.serve(w, r, srv.URL) })
	return srv
}

func openDest(t *testing.T, host string) types.ImageDestination {
	t.Helper()
	dest, err := mustParse(t, "//"+host+"/a/b:t").NewImageDestination(testContext(t), anonSys())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dest.Close() })
	return dest
}

// onlyReader hides io.Seeker so uploads cannot rewind.
type onlyReader struct{ io.Reader }

func TestPutBlobUploads(t *testing.T) {
	t.Parallel()
	blob := bytes.Repeat([]byte("imgcopy"), 1000)
	info := types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	cases := []struct {
		name         string
		handler      *uploadHandler
		size         int64
		reader       func() io.Reader
		wantErr      string
		wantSessions int32
		newStream    bool // the error asks for the blob again (types.StreamRetryError)
	}{
		{name: "known size, relative Location", handler: &uploadHandler{}, size: info.Size, wantSessions: 1},
		{name: "unknown size streams chunked", handler: &uploadHandler{}, size: -1, wantSessions: 1},
		{name: "absolute Location", handler: &uploadHandler{absolute: true}, size: info.Size, wantSessions: 1},
		{name: "bad Location", handler: &uploadHandler{location: "http://[::1"}, size: info.Size, wantErr: "invalid Location"},
		{name: "PATCH 503 retried in a new session", handler: failingPatch(1), size: info.Size, wantSessions: 2},
		{name: "upload session lost (404) restarts", handler: func() *uploadHandler { u := failingPatch(1); u.failStatus = 404; return u }(), size: info.Size, wantSessions: 2},
		{name: "answer to the final PUT lost", handler: &uploadHandler{loseFinish: true}, size: info.Size, wantSessions: 1},
		{name: "PATCH 503 with a stream that cannot rewind", handler: failingPatch(1), size: info.Size,
			reader: func() io.Reader { return onlyReader{bytes.NewReader(blob)} }, wantErr: "503", wantSessions: 1, newStream: true},
		{name: "PATCH 400 with a stream that cannot rewind", handler: func() *uploadHandler { u := failingPatch(1); u.failStatus = 400; return u }(), size: info.Size,
			reader: func() io.Reader { return onlyReader{bytes.NewReader(blob)} }, wantErr: "400", wantSessions: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newUploadServer(t, tc.handler)
			dest := openDest(t, srv.host)
			r := io.Reader(bytes.NewReader(blob))
			if tc.reader != nil {
				r = tc.reader()
			}
			got, err := dest.PutBlob(testContext(t), r, types.BlobInfo{Digest: info.Digest, Size: tc.size}, types.PutBlobOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				var sre *types.StreamRetryError
				if errors.As(err, &sre) != tc.newStream {
					t.Errorf("error %v: StreamRetryError %v, want %v", err, !tc.newStream, tc.newStream)
				}
			} else if err != nil || got.Digest != info.Digest || got.Size != info.Size {
				t.Fatalf("PutBlob = %+v, %v", got, err)
			}
			if tc.wantSessions != 0 && tc.handler.sessions.Load() != tc.wantSessions {
				t.Errorf("%d upload sessions, want %d", tc.handler.sessions.Load(), tc.wantSessions)
			}
			for _, req := range srv.requests() {
				if req.Method == http.MethodPatch && req.Header.Get("Content-Type") != "application/octet-stream" {
					t.Errorf("PATCH Content-Type %q", req.Header.Get("Content-Type"))
				}
				if req.Method == http.MethodPatch && tc.size < 0 && req.ContentLength != -1 {
					t.Errorf("PATCH with unknown size has Content-Length %d, want chunked", req.ContentLength)
				}
			}
		})
	}
}

// TestPutBlobHonoursRetryAfter: an upload refused with 429 and Retry-After is sent again
// after that delay, not the retry policy's back-off, whether PutBlob sends it again itself
// (a stream it can rewind) or asks for the blob again (types.StreamRetryError), and with the
// attempts so far (PutBlobOptions.Attempt) counted against --retry-times.
func TestPutBlobHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	blob := bytes.Repeat([]byte("imgcopy"), 1000)
	info := types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	for _, tc := range []struct {
		name      string
		rewind    bool
		attempt   int
		wantRetry bool // a StreamRetryError, after the delay
	}{
		{"rewindable", true, 0, false},
		{"read once", false, 0, true},
		{"read once, retries used up", false, defaultRetryTimes, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := failingPatch(1)
			h.retryAfter = "7"
			srv := newUploadServer(t, h)
			dest := openDest(t, srv.host)
			rs := &recordingSleeper{}
			ctx := withSleeper(testContext(t), rs.sleep)
			r := io.Reader(bytes.NewReader(blob))
			if !tc.rewind {
				r = onlyReader{r}
			}
			_, err := dest.PutBlob(ctx, r, info, types.PutBlobOptions{Attempt: tc.attempt})
			var sre *types.StreamRetryError
			switch {
			case tc.rewind && err != nil:
				t.Fatalf("PutBlob: %v", err)
			case !tc.rewind && errors.As(err, &sre) != tc.wantRetry:
				t.Fatalf("error %v, want StreamRetryError %v", err, tc.wantRetry)
			case !tc.rewind && !errors.Is(err, types.ErrRateLimited):
				t.Errorf("error %v, want the 429", err)
			}
			want := []time.Duration{7 * time.Second}
			if tc.attempt >= defaultRetryTimes {
				want = nil
			}
			if got := rs.get(); !equalDurations(got, want) {
				t.Errorf("delays %v, want %v", got, want)
			}
		})
	}
}

func failingPatch(n int32) *uploadHandler {
	u := &uploadHandler{}
	u.failPatch.Store(n)
	return u
}

func TestPutBlobDigestMismatchCancelsSession(t *testing.T) {
	t.Parallel()
	h := &uploadHandler{}
	srv := newUploadServer(t, h)
	dest := openDest(t, srv.host)
	_, err := dest.PutBlob(testContext(t), strings.NewReader("actual"), types.BlobInfo{Digest: digest.FromString("expected"), Size: -1}, types.PutBlobOptions{})
	if !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("error %v, want ErrDigestMismatch", err)
	}
	if srv.count(http.MethodPut, "/uploads/") != 0 || srv.count(http.MethodDelete, "/uploads/") != 1 {
		t.Errorf("requests %+v: want no PUT ?digest= and one DELETE of the session", srv.requests())
	}
}

// TestMountFallsBackOn202: a mount the registry answers with an upload session (202) is not
// reused; the session serves the next upload instead of a new POST (a stale cache costs no
// extra requests), and one no upload used is cancelled when the destination closes.
func TestMountFallsBackOn202(t *testing.T) {
	t.Parallel()
	for _, upload := range []bool{true, false} {
		h := &uploadHandler{}
		srv := newUploadServer(t, h)
		dest, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageDestination(testContext(t), anonSys())
		if err != nil {
			t.Fatal(err)
		}
		blob := []byte("layer")
		d := digest.FromBytes(blob)
		cache := newMemCache()
		cache.RecordKnownLocation(transportName, types.BICTransportScope{Opaque: srv.host}, d, types.BICLocationReference{Opaque: "x/y"})
		_, ok, err := dest.TryReusingBlob(testContext(t), types.BlobInfo{Digest: d, Size: 5}, types.ReuseOptions{Cache: cache})
		if err != nil || ok {
			t.Fatalf("TryReusingBlob = %v, %v; want not reused", ok, err)
		}
		if upload {
			if _, err := dest.PutBlob(testContext(t), bytes.NewReader(blob), types.BlobInfo{Digest: d, Size: 5}, types.PutBlobOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := dest.Close(); err != nil {
			t.Fatal(err)
		}
		var seq []string
		for _, r := range srv.requests()[1:] { // after the ping
			seq = append(seq, r.Method+" "+r.Path+"?"+r.RawQuery)
		}
		want := []string{
			"HEAD /v2/a/b/blobs/" + d.String() + "?",
			"POST /v2/a/b/blobs/uploads/?from=x%2Fy&mount=" + strings.ReplaceAll(d.String(), ":", "%3A"),
		}
		if upload {
			want = append(want, "PATCH /v2/a/b/blobs/uploads/session1?", "PUT /v2/a/b/blobs/uploads/session1?_state=x&digest="+strings.ReplaceAll(d.String(), ":", "%3A"))
		} else {
			want = append(want, "DELETE /v2/a/b/blobs/uploads/session1?")
		}
		if strings.Join(seq, "\n") != strings.Join(want, "\n") {
			t.Errorf("upload %v: requests:\n%s\nwant:\n%s", upload, strings.Join(seq, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestMountRefusalWarnsOnce checks that a stale cache naming many blobs of a repository the
// registry no longer has gives one warning per destination, not one per blob.
func TestMountRefusalWarnsOnce(t *testing.T) {
	hook := logtest.NewGlobal()
	t.Cleanup(func() { logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{}) })
	srv := newUploadServer(t, &uploadHandler{})
	dest := openDest(t, srv.host)
	cache := newMemCache()
	for i := range 3 {
		d := digest.FromString(fmt.Sprintf("layer %d", i))
		cache.RecordKnownLocation(transportName, types.BICTransportScope{Opaque: srv.host}, d, types.BICLocationReference{Opaque: "gone/repo"})
		if _, ok, err := dest.TryReusingBlob(testContext(t), types.BlobInfo{Digest: d, Size: 5}, types.ReuseOptions{Cache: cache}); err != nil || ok {
			t.Fatalf("TryReusingBlob = %v, %v; want not reused", ok, err)
		}
	}
	warnings := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "refused the cross-repository mount") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings about refused mounts, want 1", warnings)
	}
}

func TestPutManifestRejection(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 20, "amd64")
	cases := []struct {
		name       string
		status     int
		code       string
		mimeType   string // default: OCI manifest
		wantReject bool
	}{
		{name: "MANIFEST_INVALID", status: 400, code: codeManifestInvalid, wantReject: true},
		{name: "UNSUPPORTED", status: 400, code: codeUnsupported, wantReject: true},
		{name: "415", status: 415, code: "", wantReject: true},
		{name: "MANIFEST_BLOB_UNKNOWN is not a type problem", status: 400, code: "MANIFEST_BLOB_UNKNOWN"},
		{name: "DENIED", status: 403, code: "DENIED"},
		// CNCF distribution 2.x (Debian's docker-registry 2.8) refuses schema1 this way.
		{name: "schema1 answered with 500 UNKNOWN", status: 500, code: codeUnknown, mimeType: manifest.DockerV2Schema1SignedMediaType, wantReject: true},
		{name: "500 UNKNOWN for another type is a failure", status: 500, code: codeUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v2/" {
					writeRegistryError(w, tc.status, tc.code, "nope")
				}
			})
			noRetry := 0
			dest, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageDestination(testContext(t), &types.SystemContext{NoCreds: true, RetryTimes: &noRetry})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dest.Close() })
			mimeType := cmp.Or(tc.mimeType, imgspecv1.MediaTypeImageManifest)
			err = dest.PutManifest(testContext(t), img.manifest, mimeType, nil)
			var rej types.ManifestTypeRejectedError
			if got := errors.As(err, &rej); got != tc.wantReject || err == nil {
				t.Fatalf("error %v: rejected=%v, want %v", err, got, tc.wantReject)
			}
			if tc.wantReject && rej.MIMEType != mimeType {
				t.Errorf("rejected MIME type %q", rej.MIMEType)
			}
			if tc.status == 403 && !errors.Is(err, types.ErrDenied) {
				t.Errorf("error %v is not ErrDenied", err)
			}
		})
	}
}

func TestTagOnlyOnCommit(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 21, "amd64")
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			if r.Header.Get("Content-Type") != imgspecv1.MediaTypeImageManifest {
				writeRegistryError(w, 400, codeManifestInvalid, "wrong content type")
				return
			}
			w.WriteHeader(http.StatusCreated)
		}
	})
	dest := openDest(t, srv.host)
	ctx := testContext(t)
	if err := dest.PutManifest(ctx, img.manifest, imgspecv1.MediaTypeImageManifest, nil); err != nil {
		t.Fatal(err)
	}
	if srv.count(http.MethodPut, "/manifests/t") != 0 || srv.count(http.MethodPut, "/manifests/"+img.digest.String()) != 1 {
		t.Fatalf("before Commit: %+v", srv.requests())
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if srv.count(http.MethodPut, "/manifests/t") != 1 {
		t.Fatalf("Commit did not tag: %+v", srv.requests())
	}
}

// TestNameOnPut checks that after NameOnPut the top-level manifest is pushed by tag in
// PutManifest and not again in Commit, that instances stay by digest, that a tag already
// pointing at it is not pushed at all, and that a manifest with a subject keeps the push by
// digest and the tag at Commit (its referrers index is updated before the tag moves).
func TestNameOnPut(t *testing.T) {
	t.Parallel()
	img, other := newTestImage(t, 22, "amd64"), newTestImage(t, 23, "arm64") // other: an instance
	subject := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: img.digest, Size: int64(len(img.manifest))}
	rm := imgspecv1.Manifest{MediaType: imgspecv1.MediaTypeImageManifest, ArtifactType: "a/b",
		Config: imgspecv1.DescriptorEmptyJSON, Layers: []imgspecv1.Descriptor{}, Subject: &subject}
	rm.SchemaVersion = 2
	referrer, err := json.Marshal(rm)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                      string
		body                      []byte
		tagPointsAt               bool // HasManifest finds the tag pointing at the manifest
		byTag, byDigest, atCommit int  // PUTs by tag and by digest in PutManifest, PUTs in Commit
	}{
		{name: "image", body: img.manifest, byTag: 1},
		{name: "tag points at it already", body: img.manifest, tagPointsAt: true},
		{name: "manifest with a subject", body: referrer, byDigest: 1, atCommit: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dg := digest.FromBytes(tc.body)
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodHead && tc.tagPointsAt:
					w.Header().Set("Docker-Content-Digest", dg.String())
				case r.Method == http.MethodHead:
					w.WriteHeader(http.StatusNotFound)
				case r.Method == http.MethodPut:
					w.Header().Set("OCI-Subject", subject.Digest.String())
					w.WriteHeader(http.StatusCreated)
				}
			})
			dest := openDest(t, srv.host)
			ctx := testContext(t)
			dest.(types.ManifestNamer).NameOnPut()
			if _, err := dest.(types.ManifestChecker).HasManifest(ctx, dg); err != nil {
				t.Fatal(err)
			}
			instance := other.digest
			if err := dest.PutManifest(ctx, other.manifest, imgspecv1.MediaTypeImageManifest, &instance); err != nil {
				t.Fatal(err)
			}
			instancePuts := srv.count(http.MethodPut, "/manifests/"+other.digest.String())
			if err := dest.PutManifest(ctx, tc.body, imgspecv1.MediaTypeImageManifest, nil); err != nil {
				t.Fatal(err)
			}
			byTag, byDigest := srv.count(http.MethodPut, "/manifests/t"), srv.count(http.MethodPut, "/manifests/"+dg.String())
			if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
				t.Fatal(err)
			}
			atCommit := srv.count(http.MethodPut, "/manifests/t") - byTag
			if instancePuts != 1 || byTag != tc.byTag || byDigest != tc.byDigest || atCommit != tc.atCommit {
				t.Fatalf("instance PUTs %d, by tag %d, by digest %d, at Commit %d; want 1, %d, %d, %d: %+v",
					instancePuts, byTag, byDigest, atCommit, tc.byTag, tc.byDigest, tc.atCommit, srv.requests())
			}
		})
	}
}

func TestUploadToAnotherHostGetsNoCredentials(t *testing.T) {
	t.Parallel()
	blob := []byte("blob on another host")
	other := &uploadHandler{}
	otherSrv := newUploadServer(t, other)
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			w.Header().Set("Location", otherSrv.URL+"/v2/a/b/blobs/uploads/elsewhere")
			w.WriteHeader(http.StatusAccepted)
		}
	})
	sys := &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "pw"}}
	dest, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageDestination(testContext(t), sys)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if _, err := dest.PutBlob(testContext(t), bytes.NewReader(blob), types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}, types.PutBlobOptions{}); err != nil {
		t.Fatal(err)
	}
	reqs := otherSrv.requests()
	if len(reqs) != 2 {
		t.Fatalf("other host got %d requests, want PATCH and PUT", len(reqs))
	}
	for _, r := range reqs {
		if r.Auth != "" {
			t.Errorf("%s to another host carried Authorization", r.Method)
		}
	}
}

func TestHasManifestStatuses(t *testing.T) {
	t.Parallel()
	dg := digest.FromString("manifest")
	cases := []struct {
		name         string
		status       int
		digestStatus int           // default: status
		tagDigest    digest.Digest // Docker-Content-Digest of the tag's HEAD
		want         bool
		wantErr      error
		digestHEAD   int // HEADs by digest when the tag answers first
	}{
		{name: "tag points at it", status: http.StatusOK, tagDigest: dg, want: true},
		{name: "tag points at it, digest unknown", status: http.StatusOK, digestStatus: http.StatusNotFound, tagDigest: dg, want: true},
		{name: "tag points elsewhere, digest present", status: http.StatusOK, tagDigest: digest.FromString("other"), want: true, digestHEAD: 1},
		{name: "tag points elsewhere, digest absent", status: http.StatusOK, digestStatus: http.StatusNotFound, tagDigest: digest.FromString("other"), digestHEAD: 1},
		{name: "present without Docker-Content-Digest", status: http.StatusOK, want: true, digestHEAD: 1},
		{name: "absent", status: http.StatusNotFound, digestHEAD: 1},
		{name: "no tag, digest present", status: http.StatusNotFound, digestStatus: http.StatusOK, want: true, digestHEAD: 1},
		{name: "denied: not asked again by digest", status: http.StatusForbidden, wantErr: types.ErrDenied},
		{name: "denied for the tag: the answer whatever the digest's", status: http.StatusForbidden, digestStatus: http.StatusOK, wantErr: types.ErrDenied},
	}
	for _, tc := range cases {
		// The tag answers before digestHEADDelay (a registry close by), or the digest is asked
		// at once (one far away): the same answers.
		for _, atOnce := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/at once=%v", tc.name, atOnce), func(t *testing.T) {
				t.Parallel()
				srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/v2/" {
						return
					}
					if r.URL.Path == "/v2/a/b/manifests/t" {
						if tc.tagDigest != "" {
							w.Header().Set("Docker-Content-Digest", tc.tagDigest.String())
						}
						w.WriteHeader(tc.status)
						return
					}
					w.WriteHeader(cmp.Or(tc.digestStatus, tc.status))
				})
				dest := openDest(t, srv.host)
				dest.(*destination).digestDelay = map[bool]time.Duration{false: time.Hour, true: 0}[atOnce]
				got, err := dest.(types.ManifestChecker).HasManifest(testContext(t), dg)
				if got != tc.want || (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("HasManifest = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
				}
				if n := srv.count(http.MethodHead, "/v2/a/b/manifests/t"); n != 1 {
					t.Errorf("%d HEAD requests for the tag, want 1", n)
				}
				if n := srv.count(http.MethodHead, "/v2/a/b/manifests/"+dg.String()); !atOnce && n != tc.digestHEAD || n > 1 {
					t.Errorf("%d HEAD requests for the manifest digest, want %d", n, tc.digestHEAD)
				}
			})
		}
	}
}

// TestHasManifestAsksTagAndDigestAtOnce checks that the HEAD by digest does not wait for a
// slow tag's answer: the registry answers the tag only once the digest was asked for.
func TestHasManifestAsksTagAndDigestAtOnce(t *testing.T) {
	t.Parallel()
	dg := digest.FromString("manifest")
	asked := make(chan struct{})
	var once sync.Once
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/a/b/manifests/" + dg.String():
			once.Do(func() { close(asked) })
			w.WriteHeader(http.StatusNotFound)
		case "/v2/a/b/manifests/t":
			select {
			case <-asked:
				w.WriteHeader(http.StatusNotFound)
			case <-time.After(10 * time.Second):
				writeRegistryError(w, http.StatusForbidden, "DENIED", "the digest was not asked for while the tag's answer was pending")
			}
		}
	})
	has, err := openDest(t, srv.host).(types.ManifestChecker).HasManifest(testContext(t), dg)
	if has || err != nil {
		t.Fatalf("HasManifest = %v, %v; want false, nil", has, err)
	}
}

// candidatesCache answers CandidateLocations with fixed candidates.
type candidatesCache struct {
	*memCache
	cands []types.BICReplacementCandidate
}

var _ types.BlobInfoCache = candidatesCache{}

func (c candidatesCache) CandidateLocations(string, types.BICTransportScope, digest.Digest, bool) []types.BICReplacementCandidate {
	return c.cands
}

// TestReuseRequiredCompression checks that with a required compression the requested blob is
// neither checked nor mounted when it has another compression, and that only cache
// candidates recorded with the required compressor are mounted.
func TestReuseRequiredCompression(t *testing.T) {
	t.Parallel()
	gz, zst, unknown := digest.FromString("gzip layer"), digest.FromString("zstd layer"), digest.FromString("unknown layer")
	cands := []types.BICReplacementCandidate{
		{Digest: gz, CompressorName: types.GzipCompressorName, Location: types.BICLocationReference{Opaque: "src/repo"}},
		{Digest: unknown, Location: types.BICLocationReference{Opaque: "other/repo"}},
		{Digest: zst, CompressorName: types.ZstdCompressorName, Location: types.BICLocationReference{Opaque: "zstd/repo"}},
	}
	srv := newUploadServer(t, &uploadHandler{mountReply: http.StatusCreated})
	dest := openDest(t, srv.host)
	opts := types.ReuseOptions{
		Cache: candidatesCache{newMemCache(), cands}, CanSubstitute: true,
		RequiredCompression: types.ZstdCompressorName, OriginalCompression: types.GzipCompressorName,
		SourceReference: mustParse(t, "//"+srv.host+"/src/repo:1"),
	}
	reused, ok, err := dest.TryReusingBlob(testContext(t), types.BlobInfo{Digest: gz, Size: 5}, opts)
	if err != nil || !ok || reused.Info.Digest != zst || reused.MountedFrom != "zstd/repo" {
		t.Fatalf("TryReusingBlob = %+v, %v, %v; want the zstd variant mounted from zstd/repo", reused, ok, err)
	}
	for _, r := range srv.requests()[1:] {
		if strings.Contains(r.Path+"?"+r.RawQuery, gz.Encoded()) || strings.Contains(r.RawQuery, unknown.Encoded()) {
			t.Errorf("request %s %s?%s asks for a blob of the wrong (or unknown) compression", r.Method, r.Path, r.RawQuery)
		}
	}
}
