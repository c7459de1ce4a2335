package docker

import (
	"context"
	"io"
	"net/http"
	"strconv"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/types"
)

// getKeptBlob fetches a blob while keeping what arrives in a partial download of the resume
// store, and continues from what an earlier run kept (issue 17): the kept bytes are streamed
// from disk, then the rest from the registry with a Range request. The stream starts at the
// blob's first byte either way, so the copy engine verifies all of it. ok is false when the
// blob is not kept (resuming off, size unknown, too small or too large, another process
// fetching it); the caller then fetches it as usual.
//
// A destination that keeps what it receives (opts.DestinationKeeps) makes a partial download
// redundant: none is kept, and the stream continues from the bytes the destination kept, if
// any (opts.Prefix).
func (s *source) getKeptBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (_ io.ReadCloser, ok bool, _ error) {
	if opts.Prefix != nil && opts.PrefixSize > 0 && opts.PrefixSize <= info.Size && !opts.NoResume {
		return s.getAfterPrefix(ctx, info, opts.Prefix, opts.PrefixSize)
	}
	if s.store == nil || info.Size < 0 || opts.DestinationKeeps {
		return nil, false, nil
	}
	p, err := s.store.OpenPartial(info.Digest, info.Size)
	if err != nil {
		logrus.WithFields(logrus.Fields{"digest": info.Digest, "error": err}).Warn("cannot keep a partial download of the blob; fetching it without")
		return nil, false, nil
	}
	if p == nil {
		return nil, false, nil
	}
	log := logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": info.Size, "kept": p.Kept()})
	switch {
	case p.Kept() > 0 && opts.NoResume:
		log.Debug("discarding the partial download an earlier run kept")
		p.Discard()
	case p.Kept() > info.Size:
		log.Debug("discarding a partial download larger than the blob")
		p.Discard()
	case p.Kept() > 0:
		log.Debug("continuing the partial download an earlier run kept")
	}
	ks := &keptStream{p: p, d: info.Digest, size: info.Size}
	if p.Kept() < info.Size {
		body, from, err := s.c.getBlobFrom(ctx, info.Digest, s.scopes, p.Kept(), info.Size)
		if err != nil {
			_ = p.Close(false)
			return nil, true, err
		}
		if from < p.Kept() { // the registry sent the whole blob: the network is the one source
			p.Discard()
		}
		ks.net = body
	}
	ks.resumed = p.Kept()
	ks.prefix = p.Reader()
	return ks, true, nil
}

// getAfterPrefix streams the n bytes of blob info the destination kept (prefix), then the rest
// from the registry with a Range request; when the registry sends the whole blob instead, the
// prefix is not used.
func (s *source) getAfterPrefix(ctx context.Context, info types.BlobInfo, prefix io.Reader, n int64) (io.ReadCloser, bool, error) {
	log := logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": info.Size, "kept": n})
	ks := &keptStream{d: info.Digest, size: info.Size, resumed: n, prefix: io.LimitReader(prefix, n)}
	if n < info.Size {
		body, from, err := s.c.getBlobFrom(ctx, info.Digest, s.scopes, n, info.Size)
		if err != nil {
			return nil, true, err
		}
		if from < n {
			log.Debug("the registry sent the whole blob; not using what the destination kept")
			return body, true, nil
		}
		ks.net = body
	}
	log.Debug("continuing from what the destination kept of an interrupted copy")
	return ks, true, nil
}

// keptStream is a blob read from kept bytes (prefix: a partial download, or what the
// destination kept), then from the registry (net), recording what the registry sends into the
// partial download, if any.
type keptStream struct {
	p       *resume.Partial // nil when the destination keeps what it receives
	d       digest.Digest
	size    int64
	resumed int64
	prefix  io.Reader
	net     io.ReadCloser // nil when the whole blob was kept
	offset  int64         // bytes delivered so far
}

var _ types.ResumedReader = (*keptStream)(nil)

// ResumedBytes implements types.ResumedReader.
func (k *keptStream) ResumedBytes() int64 { return k.resumed }

func (k *keptStream) Read(b []byte) (int, error) {
	if k.prefix != nil {
		n, err := k.prefix.Read(b)
		k.offset += int64(n)
		if err == io.EOF {
			k.prefix = nil
			err = nil
			if n == 0 {
				return k.Read(b)
			}
		}
		return n, errors.Wrapf(err, "reading the partial download of blob %s", k.d)
	}
	if k.net == nil {
		return 0, io.EOF
	}
	n, err := k.net.Read(b)
	if n > 0 {
		if k.p != nil {
			k.p.Record(b[:n])
		}
		k.offset += int64(n)
	}
	return n, err
}

// Close releases the partial download: removed when the whole blob went by, kept otherwise.
func (k *keptStream) Close() error {
	var err error
	if k.net != nil {
		err = k.net.Close()
	}
	if k.p == nil {
		return err
	}
	complete := k.offset >= k.size
	if complete {
		logrus.WithFields(logrus.Fields{"digest": k.d, "resumed": k.resumed}).Debug("blob download complete; removing its partial download")
	}
	if perr := k.p.Close(complete); perr != nil {
		logrus.WithFields(logrus.Fields{"digest": k.d, "error": perr}).Debug("closing the partial download")
	}
	return err
}

// getBlobFrom GETs blob d from byte offset on (0: the whole blob) and returns the body as a
// stream that reconnects when the connection breaks, and the offset the body starts at: 0
// when the registry sent the whole blob instead of the range.
func (c *client) getBlobFrom(ctx context.Context, d digest.Digest, scopes []scope, offset, size int64) (io.ReadCloser, int64, error) {
	if offset == 0 {
		rc, _, err := c.getBlob(ctx, d, scopes)
		return rc, 0, err
	}
	resp, err := c.getRange(ctx, d, scopes, offset, size)
	if err != nil {
		return nil, 0, err
	}
	from := offset
	if resp.StatusCode == http.StatusOK {
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			drain(resp)
			return nil, 0, errors.Errorf("blob %s: the registry sent %d bytes, not %d", d, resp.ContentLength, size)
		}
		from = 0
	}
	logrus.WithFields(logrus.Fields{"digest": d, "size": size, "offset": from}).Debug("blob download started")
	return &resumingReader{ctx: ctx, c: c, d: d, scopes: scopes, body: resp.Body, size: size, offset: from, left: c.retry.times}, from, nil
}

// getRange asks for blob d from byte offset on. It answers a 206 whose Content-Range matches,
// or a 200 with the whole blob when the registry would not serve a range. A registry that
// answers the open-ended "bytes=N-" with 416, or ignores it, is asked for the closed range
// "bytes=N-(size-1)" (some CDNs serve only those), then for the whole blob.
func (c *client) getRange(ctx context.Context, d digest.Digest, scopes []scope, offset, size int64) (*http.Response, error) {
	ranges := []string{"bytes=" + strconv.FormatInt(offset, 10) + "-"}
	if size > offset {
		ranges = append(ranges, ranges[0]+strconv.FormatInt(size-1, 10))
	}
	for i, rng := range ranges {
		last := i == len(ranges)-1
		resp, err := c.do(ctx, request{method: http.MethodGet, path: blobPath(c.repo, d), header: http.Header{"Range": {rng}}, scopes: scopes})
		if err != nil {
			return nil, err
		}
		log := logrus.WithFields(logrus.Fields{"digest": d, "range": rng, "status": resp.StatusCode})
		switch resp.StatusCode {
		case http.StatusPartialContent:
			if err := checkContentRange(resp.Header.Get("Content-Range"), offset, size); err != nil {
				drain(resp)
				return nil, errors.Wrapf(err, "fetching blob %s from offset %d", d, offset)
			}
			return resp, nil
		case http.StatusOK:
			if last {
				log.Debug("registry ignored Range; taking the whole blob")
				return resp, nil
			}
			resp.Body.Close() // not read: the connection is dropped rather than drained
			log.Debug("registry ignored Range; asking for a closed range")
		case http.StatusRequestedRangeNotSatisfiable:
			drain(resp)
			log.Debug("registry refused the range")
		default:
			return nil, c.statusError(resp, kindBlob)
		}
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: blobPath(c.repo, d), scopes: scopes})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp, kindBlob)
	}
	return resp, nil
}
