package copy

import (
	"context"
	"io"
	"net/url"
	"strings"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/types"
)

// ForeignLayerFetcher fetches a foreign (non-distributable) layer from the URLs of its
// descriptor, trying them in order, and returns the stream and its size (-1 when unknown).
// The copy verifies the content against info's digest and size as with every blob. It is
// provided by the caller (the CLI's comes from internal/urlfetch), so that neither this
// package nor the local transports link an HTTP client.
type ForeignLayerFetcher func(ctx context.Context, info types.BlobInfo) (io.ReadCloser, int64, error)

// ErrForeignLayerUnavailable is returned (wrapped, naming the layer) when a foreign layer
// must be copied but neither the source has it nor can it be fetched from its URLs.
var ErrForeignLayerUnavailable = errors.New("foreign layer unavailable")

// fetchForeign gets a foreign layer the source does not have from its URLs.
func (c *copier) fetchForeign(ctx context.Context, job *blobJob, srcErr error) (io.ReadCloser, int64, error) {
	if c.opts.ForeignLayerFetcher == nil {
		return nil, -1, errors.Wrapf(ErrForeignLayerUnavailable, "%s is not in %s (%v) and no fetcher for its URLs was given",
			job.info.Digest, types.ImageName(c.srcRef), srcErr)
	}
	logrus.WithFields(logrus.Fields{"digest": job.info.Digest, "hosts": urlHosts(job.info.URLs)}).Debug("fetching foreign layer from its URLs")
	c.report.line("Copying blob %s from %s (foreign layer)", shortDigest(job.info.Digest), urlHosts(job.info.URLs))
	rc, size, err := c.opts.ForeignLayerFetcher(ctx, job.info)
	if err != nil {
		return nil, -1, errors.Wrapf(err, "fetching foreign layer %s from its URLs", job.info.Digest)
	}
	return rc, size, nil
}

// reportForeignKept says that a foreign layer is kept as a reference, not copied.
func (c *copier) reportForeignKept(info types.BlobInfo) {
	logrus.WithFields(logrus.Fields{"digest": info.Digest, "hosts": urlHosts(info.URLs)}).Debug("foreign layer kept as a reference")
	c.report.line("Copying blob %s skipped: foreign layer kept as a reference (%s)", shortDigest(info.Digest), urlHosts(info.URLs))
	c.report.event(ProgressEvent{Kind: EventBlobSkipped, Digest: info.Digest, MediaType: info.MediaType, Size: info.Size, Reason: ReasonForeignLayer})
}

// urlHosts names the hosts of urls for messages; queries and user info (signed URLs carry
// tokens) are never shown.
func urlHosts(urls []string) string {
	var hosts []string
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			hosts = append(hosts, u.Host)
		}
	}
	if len(hosts) == 0 {
		return "no URL"
	}
	return strings.Join(hosts, ", ")
}
