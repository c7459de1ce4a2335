package docker

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// source reads one image from a registry.
type source struct {
	ref    reference
	c      *client
	scopes []scope
	store  *resume.Store // partial downloads kept across runs; nil when resuming is off

	mu       sync.Mutex
	topBody  []byte // the top-level manifest, fetched once
	topMIME  string
	resolved bool
}

var _ types.ImageSource = (*source)(nil)

func newImageSource(ctx context.Context, sys *types.SystemContext, ref reference) (types.ImageSource, error) {
	s, err := newLazySource(sys, ref)
	if err != nil {
		return nil, err
	}
	// Fetch the manifest now so that a missing image or refused access fails the open, as
	// users expect from "imgcopy docker://nonexistent …".
	if _, _, err := s.GetManifest(ctx, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// newLazySource returns a source that has read nothing yet.
func newLazySource(sys *types.SystemContext, ref reference) (*source, error) {
	c, err := ref.newClient(sys)
	if err != nil {
		return nil, err
	}
	c.pullOnly = true
	s := &source{ref: ref, c: c, scopes: []scope{{repo: ref.repo(), actions: "pull"}}}
	if sys != nil {
		s.store = resume.New(sys.Resume)
	}
	return s, nil
}

// Reference implements types.ImageSource.
func (s *source) Reference() types.ImageReference { return s.ref }

// Properties implements types.ImageSource.
func (s *source) Properties() types.SourceProperties {
	return types.SourceProperties{ConcurrentBlobs: true, ConcurrentManifests: true}
}

// GetManifest implements types.ImageSource. Manifests fetched by digest are checked against
// it, and every manifest against the registry's Docker-Content-Digest when present.
func (s *source) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	if instance != nil {
		b, mt, err := s.c.getManifest(ctx, instance.String(), s.scopes)
		if err != nil {
			return nil, "", errors.Wrapf(err, "reading manifest %s of %s", instance, types.ImageName(s.ref))
		}
		return b, mt, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.resolved {
		b, mt, err := s.c.getManifest(ctx, s.ref.manifestRef(), s.scopes)
		if err != nil {
			return nil, "", errors.Wrapf(err, "reading manifest of %s", types.ImageName(s.ref))
		}
		s.topBody, s.topMIME, s.resolved = b, mt, true
	}
	return s.topBody, s.topMIME, nil
}

// getManifest GETs a manifest by tag or digest and verifies it. A body that breaks off or
// stalls is fetched again, as often as the retry policy allows.
func (c *client) getManifest(ctx context.Context, ref string, scopes []scope) ([]byte, string, error) {
	for attempt := 0; ; attempt++ {
		body, mt, bodyErr, err := c.getManifestOnce(ctx, ref, scopes)
		if !bodyErr || attempt >= c.retry.times || !retryableError(ctx, err) {
			return body, mt, err
		}
		if err := c.backoff(ctx, attempt, nil, err); err != nil {
			return nil, "", err
		}
	}
}

// getManifestOnce makes one attempt of getManifest; bodyErr reports a failure to read the body.
func (c *client) getManifestOnce(ctx context.Context, ref string, scopes []scope) (_ []byte, _ string, bodyErr bool, _ error) {
	hdr := http.Header{"Accept": manifest.SupportedMIMETypes()}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: manifestPath(c.repo, ref), header: hdr, scopes: scopes})
	if err != nil {
		return nil, "", false, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", false, c.statusError(resp, kindManifest)
	}
	defer resp.Body.Close()
	if resp.ContentLength > iolimits.MaxManifestBodySize {
		return nil, "", false, errors.Wrapf(iolimits.ErrTooLarge, "manifest of %d bytes from %s (at most %d accepted)", resp.ContentLength, c.name(), iolimits.MaxManifestBodySize)
	}
	body, err := readMetadata(resp, iolimits.MaxManifestBodySize)
	if err != nil {
		return nil, "", !errors.Is(err, iolimits.ErrTooLarge), errors.Wrap(err, "reading manifest body")
	}
	if d, err := digest.Parse(ref); err == nil {
		if err := manifest.CheckDigest(body, d, -1); err != nil {
			return nil, "", false, err
		}
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if d, err := digest.Parse(h); err == nil {
			if err := manifest.CheckDigest(body, d, -1); err != nil {
				return nil, "", false, errors.Wrap(err, "checking Docker-Content-Digest")
			}
		}
	}
	return body, manifestMIMEType(resp.Header.Get("Content-Type"), body), false, nil
}

// manifestMIMEType returns the Content-Type without parameters, or the guessed type when the
// registry sent a generic one.
func manifestMIMEType(contentType string, body []byte) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = ""
	}
	switch mt {
	case "", "application/json", "text/plain", "application/octet-stream":
		return manifest.GuessMIMEType(body)
	}
	return mt
}

// GetBlob implements types.ImageSource. A foreign layer is asked of the registry like any
// blob; its URLs are for the copy engine's ForeignLayerFetcher (internal/urlfetch), which
// applies the TLS rules of each URL's own host. The stream follows redirects to storage backends and
// resumes with a Range request if the connection breaks. With resuming on (SystemContext.Resume),
// the blob is kept in a partial download as it arrives, and a later run continues from there
// (see getKeptBlob).
func (s *source) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	if err := info.Digest.Validate(); err != nil {
		return nil, -1, errors.Wrapf(err, "fetching blob %q from %s", info.Digest, types.ImageName(s.ref))
	}
	rc, kept, err := s.getKeptBlob(ctx, info, opts)
	size := info.Size
	if !kept {
		rc, size, err = s.c.getBlob(ctx, info.Digest, s.scopes)
	}
	if err != nil {
		return nil, -1, errors.Wrapf(err, "fetching blob %s from %s", info.Digest, types.ImageName(s.ref))
	}
	if opts.Cache != nil {
		opts.Cache.RecordKnownLocation(transportName, types.BICTransportScope{Opaque: s.ref.registry()}, info.Digest,
			types.BICLocationReference{Opaque: s.ref.repo()})
	}
	return rc, size, nil
}

func (c *client) getBlob(ctx context.Context, d digest.Digest, scopes []scope) (io.ReadCloser, int64, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: blobPath(c.repo, d), scopes: scopes})
	if err != nil {
		return nil, -1, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, -1, c.statusError(resp, kindBlob)
	}
	size := resp.ContentLength // -1 when unknown
	logrus.WithFields(logrus.Fields{"digest": d, "size": size}).Debug("blob download started")
	return &resumingReader{ctx: ctx, c: c, d: d, scopes: scopes, body: resp.Body, size: size, left: c.retry.times}, size, nil
}

// resumingReader reads a blob and, when the connection breaks, asks for the rest with a
// Range request (a bounded number of times), checking that the registry answers 206 with the
// expected Content-Range, or 200 with the whole blob, whose start is then skipped.
type resumingReader struct {
	ctx    context.Context
	c      *client
	d      digest.Digest
	scopes []scope
	body   io.ReadCloser
	size   int64
	offset int64
	left   int // resumes left
	err    error
}

func (r *resumingReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.body.Read(p)
	r.offset += int64(n)
	if err == nil || err == io.EOF {
		if err == io.EOF && r.size >= 0 && r.offset < r.size && r.left > 0 {
			err = io.ErrUnexpectedEOF // the connection ended early: resume below
		} else {
			return n, err
		}
	}
	if r.left <= 0 || !retryableError(r.ctx, err) {
		if retryableError(r.ctx, err) { // the connection kept breaking: a network failure
			err = &transportError{msg: err.Error(), err: err}
		}
		r.err = errors.Wrapf(err, "reading blob %s", r.d)
		return n, r.err
	}
	if rerr := r.resume(err); rerr != nil {
		r.err = rerr
		return n, r.err
	}
	if n == 0 {
		return r.Read(p)
	}
	return n, nil
}

// resume reopens the blob at the current offset.
func (r *resumingReader) resume(cause error) error {
	r.left--
	r.body.Close()
	logrus.WithFields(logrus.Fields{"digest": r.d, "offset": r.offset, "error": cause}).Debug("resuming blob download")
	resp, err := r.c.getRange(r.ctx, r.d, r.scopes, r.offset, r.size)
	if err != nil {
		return errors.Wrapf(err, "resuming blob %s at offset %d after %v", r.d, r.offset, cause)
	}
	if resp.StatusCode == http.StatusOK {
		// The registry (or a CDN in front of it) ignored the Range header and sends the whole
		// blob again: skip what was read already, as long as it is the same blob.
		if resp.ContentLength >= 0 && r.size >= 0 && resp.ContentLength != r.size {
			drain(resp)
			return errors.Wrapf(cause, "reading blob %s: resuming at offset %d returned the whole blob with %d bytes, not %d", r.d, r.offset, resp.ContentLength, r.size)
		}
		logrus.WithFields(logrus.Fields{"digest": r.d, "offset": r.offset}).Debug("registry ignored Range; skipping the bytes read already")
		if _, err := io.CopyN(io.Discard, resp.Body, r.offset); err != nil {
			resp.Body.Close()
			return errors.Wrapf(err, "resuming blob %s at offset %d after %v: skipping the bytes read already", r.d, r.offset, cause)
		}
		r.body = resp.Body
		return nil
	}
	r.body = resp.Body // a 206 whose Content-Range getRange checked
	return nil
}

// checkContentRange checks "bytes START-END/TOTAL" against the offset asked for.
func checkContentRange(v string, offset, size int64) error {
	var start, end int64
	var total string
	if _, err := fmt.Sscanf(strings.TrimSpace(v), "bytes %d-%d/%s", &start, &end, &total); err != nil {
		return errors.Errorf("invalid Content-Range %q", v)
	}
	if start != offset {
		return errors.Errorf("Content-Range %q does not start at offset %d", v, offset)
	}
	if size >= 0 && total != "*" && total != strconv.FormatInt(size, 10) {
		return errors.Errorf("Content-Range %q does not match blob size %d", v, size)
	}
	return nil
}

// Close implements io.Closer.
func (r *resumingReader) Close() error { return r.body.Close() }

// Close implements types.ImageSource. The connections belong to the endpoint shared with
// the other clients of the registry (endpoint.go), which reuse them.
func (s *source) Close() error { return nil }
