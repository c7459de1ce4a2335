package docker

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/imgcopy/imgcopy/internal/redact"
	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// destination writes one image to a registry. Blobs and per-instance manifests are pushed
// as they come; the top-level manifest is pushed by digest in PutManifest and tagged only in
// Commit, so that nothing appears under the tag before Commit, unless the copy said with
// NameOnPut that nothing follows it: then PutManifest pushes it by tag at once.
type destination struct {
	ref       reference
	c         *client
	scopes    []scope
	store     *resume.Store // upload session records; nil when resuming is off
	chunkSize int64         // SystemContext.UploadChunkSize

	mu        sync.Mutex
	topBody   []byte // the top-level manifest, pushed by digest, tagged in Commit
	topMIME   string
	topDigest digest.Digest
	present   digest.Digest // a manifest HasManifest found stored; not pushed again
	tagged    digest.Digest // the manifest the tag points at (HasManifest found it, or pushed by tag); not tagged again
	nameOnPut bool          // NameOnPut: the top-level manifest is pushed by tag in PutManifest

	digestDelay time.Duration // digestHEADDelay; tests change it

	mountRefusals atomic.Int32 // refused cross-repository mounts, to warn only once

	spareMu sync.Mutex
	spares  []spareSession // upload sessions refused mounts opened, for the next uploads

	related relatedWrites // referrers and tags to record at Commit (referrers.go)
}

var (
	_ types.ImageDestination = (*destination)(nil)
	_ types.ManifestChecker  = (*destination)(nil)
	_ types.ManifestNamer    = (*destination)(nil)
)

func newImageDestination(_ context.Context, sys *types.SystemContext, ref reference) (types.ImageDestination, error) {
	c, err := ref.newClient(sys)
	if err != nil {
		return nil, err
	}
	d := &destination{ref: ref, c: c, scopes: []scope{{repo: ref.repo(), actions: "pull,push"}}, digestDelay: digestHEADDelay}
	if sys != nil {
		d.store, d.chunkSize = resume.New(sys.Resume), sys.UploadChunkSize
	}
	return d, nil
}

// Reference implements types.ImageDestination.
func (d *destination) Reference() types.ImageReference { return d.ref }

// Properties implements types.ImageDestination. Registries store every manifest type; the
// list is best first so that conversions (when one is forced) pick modern types.
func (d *destination) Properties() types.DestinationProperties {
	return types.DestinationProperties{
		SupportedManifestMIMETypes: []string{
			imgspecv1.MediaTypeImageManifest,
			manifest.DockerV2Schema2MediaType,
			imgspecv1.MediaTypeImageIndex,
			manifest.DockerV2ListMediaType,
			manifest.DockerV2Schema1SignedMediaType,
			manifest.DockerV2Schema1MediaType,
		},
		AcceptsIndex:            true,
		DesiredLayerCompression: types.Compress, // as skopeo and crane: registries serve gzip schema2 layers
		AcceptsForeignLayerURLs: true,
		ConcurrentBlobs:         true,
		ConcurrentManifests:     true,
	}
}

func (d *destination) cacheScope() types.BICTransportScope {
	return types.BICTransportScope{Opaque: d.ref.registry()}
}

// PutBlob implements types.ImageDestination: POST an upload session, stream the blob in
// one PATCH (or in chunks of SystemContext.UploadChunkSize), then PUT ?digest=. The registry
// checks the digest too, but we hash the stream ourselves and cancel the session on a mismatch
// before the blob becomes visible. An upload that fails before reading anything from r (or
// with r seekable) is retried in a new session. With resuming on, the session of a blob of
// known digest is recorded, and a later run continues it where the registry says it stopped.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	if info.Digest != "" {
		if err := info.Digest.Validate(); err != nil {
			return types.BlobInfo{}, errors.Wrapf(err, "invalid digest of blob to upload")
		}
	}
	logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": info.Size}).Debug("blob upload started")
	rec := d.openUploadRecord(info)
	if rec != nil {
		defer rec.Close()
	}
	for attempt := opts.Attempt; ; attempt++ {
		stored, restart, err := d.uploadOnce(ctx, r, info, opts, rec)
		if err == nil {
			if opts.Cache != nil {
				opts.Cache.RecordKnownLocation(transportName, d.cacheScope(), stored.Digest, types.BICLocationReference{Opaque: d.ref.repo()})
			}
			logrus.WithFields(logrus.Fields{"digest": stored.Digest, "size": stored.Size}).Debug("blob upload done")
			return stored, nil
		}
		err = errors.Wrapf(err, "uploading blob %s to %s", info.Digest, types.ImageName(d.ref))
		if restart == restartNone || attempt >= d.c.retry.times || ctx.Err() != nil {
			return types.BlobInfo{}, err
		}
		if authRenewable(err) {
			// A new token is ready at once: no back-off.
			logrus.WithFields(logrus.Fields{"digest": info.Digest, "error": err}).Debug("the registry refused the upload's token; uploading again with a new one")
		} else if berr := d.c.backoff(ctx, attempt, nil, err); berr != nil {
			return types.BlobInfo{}, berr
		}
		if restart == restartNewStream {
			// The stream was read and cannot be rewound: the caller opens it again.
			return types.BlobInfo{}, &types.StreamRetryError{Err: err}
		}
	}
}

// uploadRestart is what may follow a failed upload attempt.
type uploadRestart int

const (
	restartNone       uploadRestart = iota // the failure is final
	restartSameReader                      // retry with r (nothing was read from it, or it was rewound)
	restartNewStream                       // retry, but with a new stream: r was read and cannot be rewound
)

// uploadOnce makes one upload attempt, in the session an earlier run recorded (rec) or a new
// one, and says whether and how it may be retried.
func (d *destination) uploadOnce(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions, rec *resume.Upload) (types.BlobInfo, uploadRestart, error) {
	sess, err := d.openSession(ctx, info, opts.NoResume, rec)
	if err != nil {
		return types.BlobInfo{}, restartNone, err // the POST itself was already retried
	}
	if fb, ok := r.(types.FileBlob); ok && d.sendsFile(sess, info, opts) {
		if f, size, verified, ok := fb.TakeFile(); ok {
			return d.uploadFile(ctx, sess, newFileBody(f, size), verified, info)
		}
	}
	vr, err := verify.NewPutReader(r, info.Digest, info.Size, opts.Verified)
	if err != nil {
		d.endSession(ctx, sess, err, false)
		return types.BlobInfo{}, restartNone, err
	}
	sr := &sourceReader{r: vr}
	status, err := d.sendBlob(ctx, sess, sr, info.Size, opts.Resumed)
	sr.fence()
	if sr.err != nil { // the source stream failed or did not match: blame it, not the registry
		d.endSession(ctx, sess, sr.err, true)
		return types.BlobInfo{}, restartNone, sr.err
	}
	if err != nil {
		d.endSession(ctx, sess, err, false)
		if sess.resumed && status == http.StatusRequestedRangeNotSatisfiable {
			return types.BlobInfo{}, restartNone, resumeFailed(err)
		}
		// 404 means the session vanished (BLOB_UPLOAD_UNKNOWN): a new one may work.
		restart := uploadRetryable(ctx, status, err)
		switch {
		case !restart:
			return types.BlobInfo{}, restartNone, err
		case d.rewind(r, sr):
			return types.BlobInfo{}, restartSameReader, err
		}
		return types.BlobInfo{}, restartNewStream, err
	}
	if !vr.Verified() { // the registry answered before we sent everything
		d.endSession(ctx, sess, nil, false)
		return types.BlobInfo{}, restartNone, errors.Errorf("registry ended the upload after %d bytes", vr.Size())
	}
	stored := types.BlobInfo{Digest: vr.Digest(), Size: vr.Size(), MediaType: info.MediaType, URLs: info.URLs, Annotations: info.Annotations}
	return d.completeUpload(ctx, sess, stored)
}

// uploadRetryable reports whether an upload whose PATCH failed with status (0: no answer) and
// err may be made again: after a transient failure, a session the registry lost (404,
// BLOB_UPLOAD_UNKNOWN), or a token the registry refused mid-upload (authRenewError), since
// the next attempt sends a new one.
func uploadRetryable(ctx context.Context, status int, err error) bool {
	return retryableStatus(status) || status == http.StatusNotFound || (status == 0 && retryableError(ctx, err)) || authRenewable(err)
}

// sendsFile reports whether a blob whose stream is a file (types.FileBlob) is better sent as
// the file itself: to a plain HTTP upload URL (where the connection uses sendfile(2); TLS
// encrypts in our process anyway), in one PATCH from the start, of a blob whose stream the
// engine verifies.
func (d *destination) sendsFile(sess *uploadSession, info types.BlobInfo, opts types.PutBlobOptions) bool {
	return opts.Verified && info.Digest != "" && info.Size > 0 && sess.offset == 0 && d.chunkSize == 0 &&
		sess.loc.Scheme == "http"
}

// uploadFile sends the file the engine handed over in one PATCH, and completes the upload once
// the engine verified the file (read on the side while it went out): a file that did not match
// its digest is cancelled at the registry, never PUT. A failed PATCH is returned at once.
func (d *destination) uploadFile(ctx context.Context, sess *uploadSession, body *fileBody, verified func() error, info types.BlobInfo) (types.BlobInfo, uploadRestart, error) {
	size := body.left.N
	if status, err := d.patch(ctx, sess, body, -1, size); err != nil {
		d.endSession(ctx, sess, err, false)
		if uploadRetryable(ctx, status, err) {
			return types.BlobInfo{}, restartNewStream, err // the file was taken: a new stream
		}
		return types.BlobInfo{}, restartNone, err
	}
	if err := verified(); err != nil { // blame the source, not the registry
		d.endSession(ctx, sess, err, true)
		return types.BlobInfo{}, restartNone, err
	}
	stored := types.BlobInfo{Digest: info.Digest, Size: size, MediaType: info.MediaType, URLs: info.URLs, Annotations: info.Annotations}
	return d.completeUpload(ctx, sess, stored)
}

// completeUpload PUTs ?digest= to end the session with the verified blob.
func (d *destination) completeUpload(ctx context.Context, sess *uploadSession, stored types.BlobInfo) (types.BlobInfo, uploadRestart, error) {
	if err := d.finishUpload(ctx, sess.loc, stored.Digest); err != nil {
		if d.completedUnanswered(ctx, err, stored) {
			if sess.rec != nil {
				sess.rec.Forget()
			}
			return stored, restartNone, nil
		}
		d.endSession(ctx, sess, err, false)
		if _, refused := asRegistryError(err); refused && sess.resumed {
			// Our stream verified, so the bytes the registry kept from the earlier run did not.
			return types.BlobInfo{}, restartNone, resumeFailed(err)
		}
		return types.BlobInfo{}, restartNone, err
	}
	if sess.rec != nil {
		sess.rec.Forget()
	}
	return stored, restartNone, nil
}

// errUploadEnded is what the HTTP transport reads from a request body after the request
// has returned (it may still hold the body when the registry answered early).
var errUploadEnded = errors.New("upload request already ended")

// sourceReader remembers the first error of the blob stream itself (including a digest
// mismatch at EOF), so that it is not mistaken for a registry failure. net/http may keep
// reading a request body in its own goroutine after the response arrived, so reads are
// serialized with fence, after which the stream's state may be inspected safely.
type sourceReader struct {
	mu     sync.Mutex
	r      io.Reader
	n      int64
	err    error
	fenced bool
}

// fence waits for a read in progress and makes every later read fail.
func (s *sourceReader) fence() {
	s.mu.Lock()
	s.fenced = true
	s.mu.Unlock()
}

func (s *sourceReader) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fenced {
		return 0, errUploadEnded
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// rewind prepares r for another attempt: possible when nothing was read, or when r seeks.
func (d *destination) rewind(r io.Reader, sr *sourceReader) bool {
	if sr.n == 0 {
		return true
	}
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(0, io.SeekStart)
		return err == nil
	}
	return false
}

// startUpload POSTs a new upload session and returns its Location and the registry's
// OCI-Chunk-Min-Length (0 when not announced).
func (d *destination) startUpload(ctx context.Context, query url.Values) (*url.URL, int64, error) {
	resp, err := d.c.do(ctx, request{method: http.MethodPost, path: "/v2/" + d.ref.repo() + "/blobs/uploads/", query: query, scopes: d.scopes})
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return nil, 0, d.c.statusError(resp, kindOther)
	}
	drain(resp)
	loc, err := locationOf(resp, nil)
	return loc, chunkMinOf(resp), err
}

// chunkMinOf returns the OCI-Chunk-Min-Length a registry announced with an upload session,
// 0 when it did not.
func chunkMinOf(resp *http.Response) int64 {
	n, _ := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64)
	return max(n, 0)
}

// locationOf returns resp's Location resolved against the request URL (it may be relative);
// fallback is used when there is none.
func locationOf(resp *http.Response, fallback *url.URL) (*url.URL, error) {
	v := resp.Header.Get("Location")
	if v == "" {
		if fallback != nil {
			return fallback, nil
		}
		return nil, errors.Errorf("registry sent no Location for %s %s", resp.Request.Method, redact.URL(resp.Request.URL))
	}
	u, err := resp.Request.URL.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.Errorf("registry sent an invalid Location header for %s %s", resp.Request.Method, redact.URL(resp.Request.URL))
	}
	return u, nil
}

// finishUpload PUTs ?digest= to close the session.
func (d *destination) finishUpload(ctx context.Context, loc *url.URL, dg digest.Digest) error {
	resp, err := d.c.do(ctx, request{method: http.MethodPut, url: loc, query: url.Values{"digest": {dg.String()}}, scopes: d.scopes})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		return d.c.statusError(resp, kindBlob)
	}
	drain(resp)
	return nil
}

// completedUnanswered reports whether a final PUT that failed with 404 (the session unknown)
// had in fact completed: when the connection drops before the registry's answer arrives, the
// PUT is sent again and finds the session gone, since the first one closed it. The registry
// then holds the blob.
func (d *destination) completedUnanswered(ctx context.Context, err error, stored types.BlobInfo) bool {
	if re, ok := asRegistryError(err); !ok || re.status != http.StatusNotFound {
		return false
	}
	size, ok, herr := d.blobExists(ctx, stored.Digest)
	if herr != nil || !ok || (size >= 0 && size != stored.Size) {
		return false
	}
	logrus.WithFields(logrus.Fields{"digest": stored.Digest, "error": err}).Debug("the registry completed the upload although its answer was lost")
	return true
}

// cancelUpload deletes an upload session, best effort: it expires on its own anyway.
func (d *destination) cancelUpload(loc *url.URL) {
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	resp, err := d.c.send(ctx, request{method: http.MethodDelete, url: loc, scopes: d.scopes})
	if err != nil {
		logrus.WithFields(logrus.Fields{"url": redact.URL(loc), "error": err}).Debug("cancelling upload session")
		return
	}
	drain(resp)
}

// Close implements types.ImageDestination: it cancels the upload sessions refused mounts
// opened that no upload used, a few at a time. The connections belong to the endpoint shared
// with the other clients of the registry (endpoint.go), which reuse them.
func (d *destination) Close() error {
	d.spareMu.Lock()
	spares := d.spares
	d.spares = nil
	d.spareMu.Unlock()
	var g errgroup.Group
	g.SetLimit(maxSpareCancels)
	for _, s := range spares {
		g.Go(func() error {
			d.cancelUpload(s.loc)
			return nil
		})
	}
	return g.Wait()
}

// maxSpareCancels is how many unused spare sessions Close cancels at once.
const maxSpareCancels = 6

// spareSession is an upload session the registry opened instead of a cross-repository mount
// (202): an ordinary session of this repository, which the next upload uses instead of POSTing
// a new one (as go-containerregistry does), so that a stale cache costs no extra requests.
type spareSession struct {
	loc      *url.URL
	minChunk int64
}

func (d *destination) addSpare(s spareSession) {
	d.spareMu.Lock()
	defer d.spareMu.Unlock()
	d.spares = append(d.spares, s)
}

// newUpload returns a spare session when there is one, else POSTs a new one.
func (d *destination) newUpload(ctx context.Context) (*url.URL, int64, error) {
	d.spareMu.Lock()
	if n := len(d.spares); n > 0 {
		s := d.spares[n-1]
		d.spares = d.spares[:n-1]
		d.spareMu.Unlock()
		return s.loc, s.minChunk, nil
	}
	d.spareMu.Unlock()
	return d.startUpload(ctx, nil)
}
