package docker

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// fileStream is a types.FileBlob stream as the copy engine hands it over: the file can be
// taken, and its verification returns verifyErr, after calling onVerify.
type fileStream struct {
	io.Reader
	f         *os.File
	size      int64
	verifyErr error
	onVerify  func()
	taken     atomic.Int32
	verified  atomic.Int32
}

func (s *fileStream) TakeFile() (*os.File, int64, func() error, bool) {
	if s.taken.Add(1) > 1 {
		return nil, 0, nil, false
	}
	return s.f, s.size, func() error {
		s.verified.Add(1)
		if s.onVerify != nil {
			s.onVerify()
		}
		return s.verifyErr
	}, true
}

func newFileStream(t *testing.T, data []byte) *fileStream {
	t.Helper()
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &fileStream{Reader: bytes.NewReader(data), f: f, size: int64(len(data))}
}

// TestPutBlobSendsFile: over plain HTTP a verified stream that is a file is sent as the file
// (taken, not read, and handed to the connection's ReadFrom), and the upload is completed
// only after the engine's verification. Not parallel: filePiecesSent counts for the package.
func TestPutBlobSendsFile(t *testing.T) {
	h := &uploadHandler{}
	srv := newUploadServer(t, h)
	dest := openDest(t, srv.host)
	data := bytes.Repeat([]byte("sendfile"), 100000)
	fs := newFileStream(t, data)
	fs.Reader = errReaderOnly{}
	putsAtVerify := -1
	fs.onVerify = func() { putsAtVerify = srv.count(http.MethodPut, "/uploads/") }
	info := types.BlobInfo{Digest: digest.FromBytes(data), Size: int64(len(data))}
	before := filePiecesSent.Load()
	got, err := dest.PutBlob(testContext(t), fs, info, types.PutBlobOptions{Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	if filePiecesSent.Load() == before {
		t.Error("the file did not reach the connection's ReadFrom (sendfile)")
	}
	if got.Digest != info.Digest || got.Size != info.Size {
		t.Errorf("stored %+v, want %+v", got, info)
	}
	if fs.taken.Load() != 1 || fs.verified.Load() != 1 {
		t.Errorf("file taken %d times, verified %d times; want once each", fs.taken.Load(), fs.verified.Load())
	}
	if b, _ := h.got.Load().([]byte); !bytes.Equal(b, data) {
		t.Errorf("registry received %d bytes, want the file's %d", len(b), len(data))
	}
	if putsAtVerify != 0 || srv.count(http.MethodPut, "/uploads/") != 1 {
		t.Errorf("PUT ?digest= sent before the verification (%d) or not once (%d)", putsAtVerify, srv.count(http.MethodPut, "/uploads/"))
	}
}

// errReaderOnly fails every read: a destination that took the file must not read the stream.
type errReaderOnly struct{}

func (errReaderOnly) Read([]byte) (int, error) {
	return 0, errors.New("stream read after its file was taken")
}

// TestPutBlobSentFileMismatchCancels: a file that fails the engine's verification is never
// completed: the session is cancelled and the mismatch returned.
func TestPutBlobSentFileMismatchCancels(t *testing.T) {
	t.Parallel()
	h := &uploadHandler{}
	srv := newUploadServer(t, h)
	dest := openDest(t, srv.host)
	data := bytes.Repeat([]byte("x"), 4096)
	fs := newFileStream(t, data)
	fs.verifyErr = types.DigestMismatchError{Expected: digest.FromString("expected").String(), Actual: digest.FromBytes(data).String(), ExpectedSize: 4096, ActualSize: 4096}
	_, err := dest.PutBlob(testContext(t), fs, types.BlobInfo{Digest: digest.FromString("expected"), Size: 4096}, types.PutBlobOptions{Verified: true})
	if !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("error %v, want the mismatch", err)
	}
	if fs.taken.Load() != 1 || srv.count(http.MethodPut, "/uploads/") != 0 || srv.count(http.MethodDelete, "/uploads/") != 1 {
		t.Errorf("taken %d; requests %+v: want no PUT ?digest= and one DELETE of the session", fs.taken.Load(), srv.requests())
	}
}

// TestPutBlobReadsFileStreamOverTLS: over TLS (which encrypts in this process anyway) and for
// a stream the engine does not verify, the stream is read, the file not taken.
func TestPutBlobReadsFileStreamOverTLS(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("tls"), 50000)
	info := types.BlobInfo{Digest: digest.FromBytes(data), Size: int64(len(data))}
	reg := testregistry.Start(t, testregistry.Options{TLS: true})
	dest, err := mustParse(t, "//"+reg.Host+"/a/b:t").NewImageDestination(testContext(t), &types.SystemContext{NoCreds: true, CertDir: reg.CertDir})
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	fs := newFileStream(t, data)
	if _, err := dest.PutBlob(testContext(t), fs, info, types.PutBlobOptions{Verified: true}); err != nil {
		t.Fatal(err)
	}
	plain := openDest(t, newUploadServer(t, &uploadHandler{}).host)
	unverified := newFileStream(t, data)
	if _, err := plain.PutBlob(testContext(t), unverified, info, types.PutBlobOptions{}); err != nil {
		t.Fatal(err)
	}
	if fs.taken.Load() != 0 || unverified.taken.Load() != 0 {
		t.Errorf("file taken over TLS (%d) or for an unverified stream (%d)", fs.taken.Load(), unverified.taken.Load())
	}
}

// readFromRecorder is a connection whose ReadFrom records what it is given.
type readFromRecorder struct {
	net.Conn
	readers []io.Reader
	limits  []int64
	buf     bytes.Buffer
}

func (c *readFromRecorder) ReadFrom(r io.Reader) (int64, error) {
	c.readers = append(c.readers, r)
	if lr, ok := r.(*io.LimitedReader); ok {
		c.limits = append(c.limits, lr.N)
	}
	return io.Copy(&c.buf, r)
}

// TestBulkConnSendsFileBody: a file body under net/http's LimitedReader (and the watchdog's
// wrapper) reaches the connection's own ReadFrom as the file itself, in pieces, each piece
// restarting the countdown; the body's limit is honoured.
func TestBulkConnSendsFileBody(t *testing.T) {
	t.Parallel()
	data := make([]byte, 2*sendFilePiece+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	fs := newFileStream(t, data)
	rec := &readFromRecorder{}
	var ticks int
	body := tickingBody{fb: newFileBody(fs.f, int64(len(data))), tick: func() { ticks++ }}
	limit := int64(len(data) - 50)
	lr := &io.LimitedReader{R: body, N: limit}
	n, err := bulkConn{rec}.ReadFrom(lr)
	if err != nil || n != limit || lr.N != 0 {
		t.Fatalf("sent %d (left %d), %v; want %d", n, lr.N, err, limit)
	}
	if !bytes.Equal(rec.buf.Bytes(), data[:limit]) {
		t.Error("the connection did not get the file's bytes")
	}
	want := []int64{sendFilePiece, sendFilePiece, limit - 2*sendFilePiece}
	if len(rec.limits) != len(want) || ticks != len(want) {
		t.Fatalf("pieces %v, ticks %d; want %v", rec.limits, ticks, want)
	}
	for i, r := range rec.readers {
		if lr, ok := r.(*io.LimitedReader); !ok || lr.R != io.Reader(fs.f) || rec.limits[i] != want[i] {
			t.Errorf("piece %d: %T of %d bytes, want a LimitedReader of the *os.File of %d", i, r, rec.limits[i], want[i])
		}
	}
}

// tickingBody wraps a fileBody as watchedRequestBody does.
type tickingBody struct {
	fb   *fileBody
	tick func()
}

func (b tickingBody) Read(p []byte) (int, error)    { return b.fb.Read(p) }
func (b tickingBody) fileBody() (*fileBody, func()) { return b.fb, b.tick }

// TestPutBlobSentFileRefused: a PATCH the registry refuses is reported at once, without
// waiting for the engine's verification of the file (the engine stops it).
func TestPutBlobSentFileRefused(t *testing.T) {
	t.Parallel()
	h := &uploadHandler{failStatus: http.StatusForbidden}
	h.failPatch.Store(1)
	srv := newUploadServer(t, h)
	dest := openDest(t, srv.host)
	data := bytes.Repeat([]byte("y"), 4096)
	fs := newFileStream(t, data)
	_, err := dest.PutBlob(testContext(t), fs, types.BlobInfo{Digest: digest.FromBytes(data), Size: 4096}, types.PutBlobOptions{Verified: true})
	if err == nil || errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("error %v, want the registry's refusal", err)
	}
	if fs.taken.Load() != 1 || fs.verified.Load() != 0 || srv.count(http.MethodPut, "/uploads/") != 0 {
		t.Errorf("taken %d, verification waited for %d times, PUTs %d; want 1, 0, 0", fs.taken.Load(), fs.verified.Load(), srv.count(http.MethodPut, "/uploads/"))
	}
}
