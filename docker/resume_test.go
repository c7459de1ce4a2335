package docker

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/types"
)

// bigBlob returns n pseudo-random bytes (worth keeping: n >= resume.MinSize).
func bigBlob(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// rangeServer serves blob at /v2/a/b/blobs/DIGEST. mode "ranges" honours Range, "416" refuses
// open-ended ranges with 416, "ignore" answers every request with the whole blob.
func rangeServer(t *testing.T, blob []byte, mode string) *fakeServer {
	t.Helper()
	path := "/v2/a/b/blobs/" + digest.FromBytes(blob).String()
	return newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			return
		case r.URL.Path == "/v2/a/b/manifests/t":
			w.Header().Set("Content-Type", imgspecv1.MediaTypeImageManifest)
			_, _ = w.Write([]byte(`{"schemaVersion":2}`))
			return
		case r.URL.Path != path:
			w.WriteHeader(http.StatusNotFound)
			return
		}
		rng := r.Header.Get("Range")
		switch {
		case mode == "ignore":
			r.Header.Del("Range")
		case mode == "416" && strings.HasSuffix(rng, "-"):
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(blob))
	})
}

func resumeSys(dir string) *types.SystemContext {
	sys := anonSys()
	sys.Resume = &types.ResumeOptions{Dir: dir}
	return sys
}

// fetch opens a source on srv and reads the blob: all of it, or only the first n bytes
// (n >= 0) before closing the stream, as an interrupted run does. It returns the stream's
// ResumedBytes.
func fetch(t *testing.T, srv *fakeServer, sys *types.SystemContext, blob []byte, n int, opts types.GetBlobOptions) int64 {
	t.Helper()
	ctx := testContext(t)
	src, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	info := types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	rc, size, err := src.GetBlob(ctx, info, opts)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(blob)) {
		t.Fatalf("GetBlob size %d, want %d", size, len(blob))
	}
	var resumed int64
	if rr, ok := rc.(types.ResumedReader); ok {
		resumed = rr.ResumedBytes()
	}
	if n >= 0 {
		if _, err := io.ReadFull(rc, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		return resumed
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("read %d bytes (err %v), want the blob's %d", len(got), err, len(blob))
	}
	return resumed
}

func blobRanges(srv *fakeServer, blob []byte) []string {
	var out []string
	for _, r := range srv.requests() {
		if strings.HasSuffix(r.Path, digest.FromBytes(blob).String()) {
			out = append(out, r.Header.Get("Range"))
		}
	}
	return out
}

func keptFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestDownloadResumesAcrossRuns: a first source reads part of a blob and is closed (an
// interrupted run); a second one, sharing only the resume directory, streams the kept part
// from disk and asks the registry for the rest. The stream is the whole blob either way, and
// once it is complete nothing is left in the directory.
func TestDownloadResumesAcrossRuns(t *testing.T) {
	t.Parallel()
	blob := bigBlob(1, 2*resume.MinSize+123)
	cut := len(blob) * 6 / 10
	tail := strconv.Itoa(len(blob) - 1)
	cases := []struct {
		name        string
		mode        string
		noResume    bool
		wantResumed bool
		wantRanges  []string // of the second run
	}{
		{name: "open-ended range", mode: "ranges", wantResumed: true, wantRanges: []string{"bytes=" + strconv.Itoa(cut) + "-"}},
		{name: "open-ended range refused: closed range", mode: "416", wantResumed: true,
			wantRanges: []string{"bytes=" + strconv.Itoa(cut) + "-", "bytes=" + strconv.Itoa(cut) + "-" + tail}},
		{name: "range ignored: whole blob", mode: "ignore",
			wantRanges: []string{"bytes=" + strconv.Itoa(cut) + "-", "bytes=" + strconv.Itoa(cut) + "-" + tail}},
		{name: "no resume", mode: "ranges", noResume: true, wantRanges: []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := rangeServer(t, blob, tc.mode)
			dir := t.TempDir()
			if got := fetch(t, srv, resumeSys(dir), blob, cut, types.GetBlobOptions{}); got != 0 {
				t.Fatalf("first run resumed %d bytes", got)
			}
			if files := keptFiles(t, dir); len(files) != 1 {
				t.Fatalf("after the interrupted run: kept files %v, want one", files)
			}
			first := len(srv.requests())
			resumed := fetch(t, srv, resumeSys(dir), blob, -1, types.GetBlobOptions{NoResume: tc.noResume})
			if want := int64(0); tc.wantResumed && resumed != int64(cut) || !tc.wantResumed && resumed != want {
				t.Errorf("resumed %d bytes, want %d (or 0 when not resumed)", resumed, cut)
			}
			got := blobRanges(&fakeServer{reqs: srv.requests()[first:]}, blob)
			if !slices.Equal(got, tc.wantRanges) {
				t.Errorf("second run's blob requests have Range %q, want %q", got, tc.wantRanges)
			}
			if files := keptFiles(t, dir); len(files) != 0 {
				t.Errorf("after the complete run: kept files %v, want none", files)
			}
		})
	}
}

// TestDownloadWholeBlobKept: a run that read the whole blob but died before it could remove
// the partial download leaves a complete file; the next run sends no blob request at all.
func TestDownloadWholeBlobKept(t *testing.T) {
	t.Parallel()
	blob := bigBlob(2, resume.MinSize+1)
	srv := rangeServer(t, blob, "ranges")
	dir := t.TempDir()
	store := resume.New(&types.ResumeOptions{Dir: dir})
	p, err := store.OpenPartial(digest.FromBytes(blob), int64(len(blob)))
	if err != nil || p == nil {
		t.Fatal(err)
	}
	p.Record(blob)
	p.Close(false)
	if resumed := fetch(t, srv, resumeSys(dir), blob, -1, types.GetBlobOptions{}); resumed != int64(len(blob)) {
		t.Errorf("resumed %d bytes, want the whole blob", resumed)
	}
	if got := blobRanges(srv, blob); len(got) != 0 {
		t.Errorf("blob requests %q, want none", got)
	}
	if files := keptFiles(t, dir); len(files) != 0 {
		t.Errorf("kept files %v, want none", files)
	}
}

// TestDownloadNotKept: small blobs, blobs of unknown size and sources without a resume
// directory keep nothing.
func TestDownloadNotKept(t *testing.T) {
	t.Parallel()
	small := bigBlob(3, resume.MinSize-1)
	srv := rangeServer(t, small, "ranges")
	dir := t.TempDir()
	fetch(t, srv, resumeSys(dir), small, 1000, types.GetBlobOptions{})
	if files := keptFiles(t, dir); len(files) != 0 {
		t.Errorf("a blob under resume.MinSize was kept: %v", files)
	}
	big := bigBlob(4, resume.MinSize)
	srv = rangeServer(t, big, "ranges")
	fetch(t, srv, anonSys(), big, 1000, types.GetBlobOptions{})
	fetch(t, srv, resumeSys(dir), big, -1, types.GetBlobOptions{}) // no kept file: a plain GET
	if got := blobRanges(srv, big); !slices.Equal(got, []string{"", ""}) {
		t.Errorf("blob requests %q, want two without Range", got)
	}
}

// TestDownloadDestinationKeeps: a source told that the destination keeps what it receives
// keeps no partial download; given the bytes the destination kept (Prefix), it streams them
// and asks the registry only for the rest (nothing when it is the whole blob), or, when the
// registry sends the whole blob, does not use them.
func TestDownloadDestinationKeeps(t *testing.T) {
	t.Parallel()
	blob := bigBlob(8, resume.MinSize+4567)
	d := digest.FromBytes(blob)
	const kept = 3000
	altered := append([]byte("XXXX"), blob[4:kept]...) // proves where the stream's first bytes came from
	for _, tc := range []struct {
		name, mode  string
		prefix      []byte
		wantResumed int64
		wantRanges  []string
		wantStart   []byte
	}{
		{name: "prefix", mode: "ranges", prefix: altered, wantResumed: kept, wantRanges: []string{"bytes=3000-"}, wantStart: altered[:4]},
		{name: "registry ignores Range", mode: "ignore", prefix: altered, wantRanges: []string{"bytes=3000-", "bytes=3000-" + strconv.Itoa(len(blob)-1)}, wantStart: blob[:4]},
		// A destination closed without a commit keeps its complete blobs (resume.KeepComplete).
		{name: "the whole blob kept: no request", mode: "ranges", prefix: blob, wantResumed: int64(len(blob)), wantStart: blob[:4]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := rangeServer(t, blob, tc.mode)
			dir := t.TempDir()
			ctx := testContext(t)
			src, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, resumeSys(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			opts := types.GetBlobOptions{DestinationKeeps: true}
			if tc.prefix != nil {
				opts.Prefix, opts.PrefixSize = bytes.NewReader(tc.prefix), int64(len(tc.prefix))
			}
			rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: d, Size: int64(len(blob))}, opts)
			if err != nil {
				t.Fatal(err)
			}
			var resumed int64
			if rr, ok := rc.(types.ResumedReader); ok {
				resumed = rr.ResumedBytes()
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || len(got) != len(blob) || !bytes.Equal(got[kept:], blob[kept:]) || !bytes.Equal(got[:4], tc.wantStart) {
				t.Fatalf("read %d bytes (err %v), starting %q; want %d starting %q", len(got), err, got[:min(4, len(got))], len(blob), tc.wantStart)
			}
			if resumed != tc.wantResumed {
				t.Errorf("ResumedBytes %d, want %d", resumed, tc.wantResumed)
			}
			if got := blobRanges(srv, blob); !slices.Equal(got, tc.wantRanges) {
				t.Errorf("blob requests %q, want %q", got, tc.wantRanges)
			}
			if files := keptFiles(t, dir); len(files) != 0 {
				t.Errorf("a partial download was kept though the destination keeps: %v", files)
			}
		})
	}
	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		srv := rangeServer(t, blob, "ranges")
		dir := t.TempDir()
		fetch(t, srv, resumeSys(dir), blob, 1000, types.GetBlobOptions{DestinationKeeps: true})
		if files := keptFiles(t, dir); len(files) != 0 {
			t.Errorf("a partial download was kept though the destination keeps: %v", files)
		}
		fetch(t, srv, resumeSys(dir), blob, 1000, types.GetBlobOptions{})
		if files := keptFiles(t, dir); len(files) != 1 {
			t.Errorf("without DestinationKeeps: kept files %v, want one", files)
		}
	})
}
