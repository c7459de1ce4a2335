package docker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// patchWatch wraps a registry: it counts the request body bytes of PATCHes and PUTs and tells
// when a PATCH handler has returned (so that the registry has stored what an interrupted
// PATCH brought before the test goes on).
type patchWatch struct {
	mu      sync.Mutex
	sent    int64
	ranges  []string
	patched chan struct{}
}

func newPatchWatch() *patchWatch { return &patchWatch{patched: make(chan struct{}, 64)} }

func (p *patchWatch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPatch && r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/blobs/uploads/") {
			next.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		if r.Method == http.MethodPatch {
			p.ranges = append(p.ranges, r.Header.Get("Content-Range"))
		}
		p.mu.Unlock()
		r.Body = &countingBody{ReadCloser: r.Body, p: p}
		next.ServeHTTP(w, r)
		if r.Method == http.MethodPatch {
			p.patched <- struct{}{}
		}
	})
}

func (p *patchWatch) take() (int64, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, r := p.sent, p.ranges
	p.sent, p.ranges = 0, nil
	return n, r
}

type countingBody struct {
	io.ReadCloser
	p *patchWatch
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.p.mu.Lock()
	c.p.sent += int64(n)
	c.p.mu.Unlock()
	return n, err
}

// brokenSource yields the first n bytes of b, then fails as a source whose connection broke.
func brokenSource(b []byte, n int) io.Reader {
	return io.MultiReader(bytes.NewReader(b[:n]), iotestErrReader{errors.New("source connection reset")})
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func uploadRecords(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "uploads"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(entries)
}

// TestUploadResumesAcrossRuns: an upload whose source breaks off is kept open (and recorded);
// a second destination, sharing only the resume directory, asks the registry how much it
// holds, reads those bytes from the source without sending them, and sends the rest. Both the
// one-PATCH upload and chunked uploads resume.
func TestUploadResumesAcrossRuns(t *testing.T) {
	t.Parallel()
	blob := bigBlob(5, 2*resume.MinSize+4321)
	info := types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	cut := len(blob) * 6 / 10
	for _, chunk := range []int64{0, resume.MinSize / 2} {
		t.Run("chunk "+strconv.FormatInt(chunk, 10), func(t *testing.T) {
			t.Parallel()
			watch := newPatchWatch()
			reg := testregistry.Start(t, testregistry.Options{Wrap: watch.wrap})
			dir := t.TempDir()
			sys := resumeSys(dir)
			sys.UploadChunkSize = chunk
			ctx := testContext(t)
			ref := mustParse(t, "//"+reg.Host+"/up/load:v1")

			dest, err := ref.NewImageDestination(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			_, err = dest.PutBlob(ctx, brokenSource(blob, cut), info, types.PutBlobOptions{})
			dest.Close()
			if err == nil || !strings.Contains(err.Error(), "source connection reset") {
				t.Fatalf("interrupted PutBlob: %v", err)
			}
			patches := 1 // the interrupted one
			if chunk > 0 {
				patches += cut / int(chunk)
			}
			for range patches {
				<-watch.patched
			}
			if n := uploadRecords(t, dir); n != 1 {
				t.Fatalf("%d upload records after the interrupted run, want 1", n)
			}
			first, firstRanges := watch.take()

			var resumed int64
			dest, err = ref.NewImageDestination(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			stored, err := dest.PutBlob(ctx, bytes.NewReader(blob), info, types.PutBlobOptions{Resumed: func(n int64) { resumed = n }})
			if err != nil {
				t.Fatal(err)
			}
			if stored.Digest != info.Digest || stored.Size != info.Size {
				t.Fatalf("stored %+v", stored)
			}
			second, secondRanges := watch.take()
			if resumed <= 0 || resumed > int64(cut) {
				t.Errorf("resumed %d bytes, want (0, %d] (first run sent %d, ranges %q)", resumed, cut, first, firstRanges)
			}
			if second != int64(len(blob))-resumed {
				t.Errorf("second run sent %d bytes, want the %d the registry lacked", second, int64(len(blob))-resumed)
			}
			if len(secondRanges) == 0 || !strings.HasPrefix(secondRanges[0], strconv.FormatInt(resumed, 10)+"-") {
				t.Errorf("second run's PATCH ranges %q, want the first to start at %d", secondRanges, resumed)
			}
			if chunk > 0 {
				for _, r := range append(firstRanges, secondRanges...) {
					start, end, _ := strings.Cut(r, "-")
					s, _ := strconv.ParseInt(start, 10, 64)
					e, _ := strconv.ParseInt(end, 10, 64)
					if r == "" || e-s+1 > chunk {
						t.Errorf("chunk range %q larger than %d", r, chunk)
					}
				}
			}
			if n := uploadRecords(t, dir); n != 0 {
				t.Errorf("%d upload records after the upload completed, want 0", n)
			}
			pullBlob(t, ctx, ref, blob)
		})
	}
}

// pullBlob checks that the registry serves blob.
func pullBlob(t *testing.T, ctx context.Context, ref types.ImageReference, blob []byte) {
	t.Helper()
	r := ref.(reference)
	c, err := r.newClient(anonSys())
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := c.getBlob(ctx, digest.FromBytes(blob), []scope{{repo: r.repo(), actions: "pull"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("registry serves %d bytes (err %v), want the blob", len(got), err)
	}
}

// uploadServer is a fake registry for one upload session whose status and final PUT a test
// decides.
func uploadServer(t *testing.T, status func(w http.ResponseWriter), put func(w http.ResponseWriter)) *fakeServer {
	t.Helper()
	return newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/up/load/blobs/uploads/new")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/uploads/old"):
			status(w)
		case r.Method == http.MethodPatch:
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Location", r.URL.Path)
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut:
			put(w)
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
}

// recordOld leaves a record of the session /uploads/old on srv, as a killed run would.
func recordOld(t *testing.T, dir string, srv *fakeServer, info types.BlobInfo) {
	t.Helper()
	u, err := resume.New(&types.ResumeOptions{Dir: dir}).OpenUpload(srv.host, "up/load", info.Digest)
	if err != nil || u == nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.Save(resume.UploadRecord{Registry: srv.host, Repository: "up/load", Digest: info.Digest, Size: info.Size,
		Location: srv.URL + "/v2/up/load/blobs/uploads/old", Offset: 1000}); err != nil {
		t.Fatal(err)
	}
}

// TestUploadRecordedSessionOutcomes: what the next run does with a recorded session the
// registry no longer knows, one it refuses to complete, and one the caller asks to discard.
func TestUploadRecordedSessionOutcomes(t *testing.T) {
	t.Parallel()
	blob := bigBlob(6, resume.MinSize+10)
	info := types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	created := func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) }
	half := func(w http.ResponseWriter) {
		w.Header().Set("Range", "0-"+strconv.Itoa(len(blob)/2-1))
		w.Header().Set("Location", "/v2/up/load/blobs/uploads/old")
		w.WriteHeader(http.StatusNoContent)
	}
	cases := []struct {
		name       string
		status     func(w http.ResponseWriter)
		put        func(w http.ResponseWriter)
		noResume   bool
		wantErr    error
		wantPOST   bool // a new session was started
		wantDelete bool // the old session was cancelled
	}{
		{name: "session unknown: new session",
			status: func(w http.ResponseWriter) {
				writeRegistryError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
			}, put: created, wantPOST: true},
		{name: "continued", status: half, put: created},
		{name: "kept bytes refused: retry without resuming", status: half,
			put: func(w http.ResponseWriter) {
				writeRegistryError(w, http.StatusBadRequest, "DIGEST_INVALID", "provided digest did not match uploaded content")
			}, wantErr: types.ErrResumeFailed, wantDelete: true},
		{name: "no resume: discarded", status: half, put: created, noResume: true, wantPOST: true, wantDelete: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := uploadServer(t, tc.status, tc.put)
			dir := t.TempDir()
			recordOld(t, dir, srv, info)
			ctx := testContext(t)
			dest, err := mustParse(t, "//"+srv.host+"/up/load:v1").NewImageDestination(ctx, resumeSys(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			var resumed int64
			_, err = dest.PutBlob(ctx, bytes.NewReader(blob), info, types.PutBlobOptions{NoResume: tc.noResume, Resumed: func(n int64) { resumed = n }})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("PutBlob: %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := srv.count(http.MethodPost, "/blobs/uploads/") == 1; got != tc.wantPOST {
				t.Errorf("new session started: %v, want %v", got, tc.wantPOST)
			}
			if got := srv.count(http.MethodDelete, "/uploads/old") == 1; got != tc.wantDelete {
				t.Errorf("old session cancelled: %v, want %v", got, tc.wantDelete)
			}
			if wantResumed := !tc.wantPOST; (resumed == int64(len(blob)/2)) != wantResumed {
				t.Errorf("Resumed(%d), want the registry's half only when the session was continued", resumed)
			}
			if n := uploadRecords(t, dir); n != 0 {
				t.Errorf("%d upload records left, want 0", n)
			}
		})
	}
}

func TestParseUploadRange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"0-0", 0, false},
		{"0-1023", 1024, false},
		{"bytes=0-99", 100, false},
		{"5-10", 0, true},
		{"0-x", 0, true},
		{"0--3", 0, true},
	}
	for _, tc := range cases {
		got, err := parseUploadRange(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseUploadRange(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
