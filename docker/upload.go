package docker

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/types"
)

// uploadSession is one upload session of a blob: new, or one an earlier run recorded and this
// one continues (issue 17).
type uploadSession struct {
	loc      *url.URL       // the latest Location (registries may change it with every request)
	offset   int64          // bytes the registry holds
	minChunk int64          // OCI-Chunk-Min-Length of the registry, 0 when not announced
	rec      *resume.Upload // the session's record; nil when not recorded
	base     resume.UploadRecord
	resumed  bool // continued from an earlier run
}

// openUploadRecord locks the record of this blob's uploads to this repository, or returns nil
// when uploads are not recorded (resuming off, digest or size unknown, a small blob, another
// process uploading the same blob).
func (d *destination) openUploadRecord(info types.BlobInfo) *resume.Upload {
	if d.store == nil || info.Digest == "" || info.Size < resume.MinSize {
		return nil
	}
	u, err := d.store.OpenUpload(d.ref.registry(), d.ref.repo(), info.Digest)
	if err != nil {
		logrus.WithFields(logrus.Fields{"digest": info.Digest, "error": err}).Warn("cannot record the upload session for a later run; uploading without")
		return nil
	}
	return u
}

// openSession continues the session rec names, when the registry still knows it, or starts
// (and records) a new one.
func (d *destination) openSession(ctx context.Context, info types.BlobInfo, noResume bool, rec *resume.Upload) (*uploadSession, error) {
	base := resume.UploadRecord{Registry: d.ref.registry(), Repository: d.ref.repo(), Digest: info.Digest, Size: info.Size}
	if rec != nil {
		if err := d.c.ping(ctx); err != nil { // cancelling a recorded session needs the scheme
			return nil, err
		}
		if prev, ok := rec.Record(); ok && noResume {
			d.dropRecorded(rec, prev, "discarding the upload session an earlier run left")
		} else if ok {
			if sess := d.continueSession(ctx, rec, prev, base); sess != nil {
				return sess, nil
			}
		}
	}
	loc, minChunk, err := d.newUpload(ctx)
	if err != nil {
		return nil, err
	}
	sess := &uploadSession{loc: loc, minChunk: minChunk, rec: rec, base: base}
	sess.record()
	return sess, nil
}

// continueSession asks the registry how much of the recorded session it holds (GET on the
// upload URL: 204 with Range). A session the registry no longer knows, or whose state makes no
// sense, is dropped, and nil returned.
func (d *destination) continueSession(ctx context.Context, rec *resume.Upload, prev, base resume.UploadRecord) *uploadSession {
	loc, err := url.Parse(prev.Location)
	if err != nil || prev.Size != base.Size {
		d.dropRecorded(rec, prev, "dropping an unusable upload record")
		return nil
	}
	offset, next, err := d.uploadStatus(ctx, loc)
	log := logrus.WithFields(logrus.Fields{"digest": base.Digest, "offset": offset})
	if err != nil || offset > base.Size {
		log.WithField("error", err).Debug("the upload session an earlier run left cannot be continued; starting a new one")
		rec.Forget()
		return nil
	}
	log.Debug("continuing the upload session an earlier run left")
	sess := &uploadSession{loc: next, offset: offset, rec: rec, base: base, resumed: true}
	sess.record()
	return sess
}

// uploadStatus GETs the state of the upload session at loc and returns how many bytes the
// registry holds and the Location to continue at. A registry that does not know the session
// (404, BLOB_UPLOAD_UNKNOWN) is an error.
func (d *destination) uploadStatus(ctx context.Context, loc *url.URL) (int64, *url.URL, error) {
	resp, err := d.c.do(ctx, request{method: http.MethodGet, url: loc, scopes: d.scopes})
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return 0, nil, d.c.statusError(resp, kindOther)
	}
	drain(resp)
	offset, err := parseUploadRange(resp.Header.Get("Range"))
	if err != nil {
		return 0, nil, err
	}
	next, err := locationOf(resp, loc)
	return offset, next, err
}

// parseUploadRange reads the Range of an upload status, "0-END" (inclusive), as the number of
// bytes held. "0-0" is read as none: distribution sends it for an empty session (and for one
// holding a single byte, which a PATCH from 0 then finds out).
func parseUploadRange(v string) (int64, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes=")
	if v == "" {
		return 0, nil
	}
	start, end, ok := strings.Cut(v, "-")
	last, err := strconv.ParseInt(end, 10, 64)
	if !ok || start != "0" || err != nil || last < 0 {
		return 0, errors.Errorf("invalid upload Range %q", v)
	}
	if last == 0 {
		return 0, nil
	}
	return last + 1, nil
}

// record saves the session's state, best effort.
func (s *uploadSession) record() {
	if s.rec == nil {
		return
	}
	r := s.base
	r.Location, r.Offset = s.loc.String(), s.offset
	if err := s.rec.Save(r); err != nil {
		logrus.WithFields(logrus.Fields{"digest": r.Digest, "error": err}).Debug("recording the upload session")
	}
}

// dropRecorded cancels a recorded session and forgets it.
func (d *destination) dropRecorded(rec *resume.Upload, prev resume.UploadRecord, why string) {
	logrus.WithFields(logrus.Fields{"digest": prev.Digest}).Debug(why)
	if loc, err := url.Parse(prev.Location); err == nil {
		d.cancelUpload(loc)
	}
	rec.Forget()
}

// endSession closes the session after a failure: kept for a later run (or the next attempt)
// when it is recorded and the failure an interruption (cancelled, the network or the source
// stream broke off, the registry refused an expired token, but not a stream that failed
// verification), else cancelled at the registry.
func (d *destination) endSession(ctx context.Context, s *uploadSession, cause error, fromSource bool) {
	interrupted := ctx.Err() != nil || retryableError(ctx, cause) || fromSource || authRenewable(cause)
	if s.rec != nil && interrupted && !errors.Is(cause, types.ErrDigestMismatch) {
		logrus.WithFields(logrus.Fields{"digest": s.base.Digest, "offset": s.offset, "error": cause}).Debug("keeping the upload session for a later run")
		return
	}
	d.cancelUpload(s.loc)
	if s.rec != nil {
		s.rec.Forget()
	}
}

// sendBlob sends what the registry does not hold yet. The bytes it holds are read from sr
// (so that they are verified) and not sent. The rest goes in one PATCH, or in chunks of
// SystemContext.UploadChunkSize, each with its Content-Range, the session recorded after each.
// status is the registry's answer when it refused a request, else 0.
func (d *destination) sendBlob(ctx context.Context, s *uploadSession, sr *sourceReader, size int64, resumed func(int64)) (status int, _ error) {
	if s.offset > 0 {
		if _, err := io.CopyN(io.Discard, sr, s.offset); err != nil {
			return 0, err
		}
		if resumed != nil {
			resumed(s.offset)
		}
	}
	chunk := d.chunkSize
	if chunk > 0 {
		chunk = max(chunk, s.minChunk)
	}
	if size < 0 || (chunk == 0 && s.offset == 0) {
		return d.patch(ctx, s, sr, -1, size)
	}
	if chunk == 0 {
		chunk = size - s.offset
	}
	for s.offset < size {
		n := min(chunk, size-s.offset)
		if status, err := d.patch(ctx, s, io.LimitReader(sr, n), s.offset, n); err != nil {
			return status, err
		}
		s.offset += n
		s.record()
	}
	// Read to the end of the stream, so that its size and digest are checked.
	if _, err := io.Copy(io.Discard, sr); err != nil {
		return 0, err
	}
	return 0, nil
}

// patch sends one PATCH of body to the session. With start >= 0 it carries the Content-Range
// start-(start+size-1) the spec asks of chunks; with -1 it is the de-facto streamed PATCH of the
// whole blob (size -1 when unknown) that every registry accepts.
func (d *destination) patch(ctx context.Context, s *uploadSession, body io.Reader, start, size int64) (int, error) {
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	if start >= 0 {
		hdr.Set("Content-Range", strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+size-1, 10))
	}
	resp, err := d.c.do(ctx, request{method: http.MethodPatch, url: s.loc, header: hdr, stream: body, size: size, scopes: d.scopes})
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusCreated {
		err := d.c.statusError(resp, kindOther)
		if resp.StatusCode == http.StatusRequestEntityTooLarge {
			// Registries behind Cloudflare (100 MB) or an nginx with a small
			// client_max_body_size refuse large requests, not large blobs.
			err = errors.Wrapf(err, "sending %s in one request, more than the registry (or a proxy in front of it) takes: upload in smaller chunks (imgcopy --upload-chunk-size)", sizeText(size))
		}
		return resp.StatusCode, err
	}
	drain(resp)
	next, err := locationOf(resp, s.loc)
	if err != nil {
		return resp.StatusCode, err
	}
	s.loc = next
	return 0, nil
}

// resumeFailed marks the failure of a continued session that a fresh upload may not have.
func resumeFailed(err error) error {
	return errors.Wrapf(types.ErrResumeFailed, "%v", err)
}

// sizeText renders a request body size for a message: "N bytes", or "the blob" when unknown.
func sizeText(size int64) string {
	if size < 0 {
		return "the blob"
	}
	return strconv.FormatInt(size, 10) + " bytes"
}
