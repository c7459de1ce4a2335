package integrity

import (
	"context"
	"io"
	"sync"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// maxDepth bounds the nesting of indexes inside indexes.
const maxDepth = 8

// image checks one listed image, through src when it is open already. It returns an error
// only when the check must stop (the context ended); everything wrong with the image is
// recorded as a problem.
func (c *checker) image(ctx context.Context, img types.ListedImage, src types.ImageSource) error {
	if img.SeparateBlobs {
		c = c.apart()
	}
	name := types.ImageName(img.Ref)
	related := relatedName(img)
	if !related {
		c.count(func(r *Report) { r.Images++ })
	}
	if src == nil {
		var err error
		if src, err = img.Ref.NewImageSource(ctx, c.sys); err != nil {
			return c.fail(ctx, name, img.Digest, err)
		}
	}
	defer src.Close()
	b, mimeType, err := src.GetManifest(ctx, nil)
	if err != nil {
		return c.fail(ctx, name, img.Digest, errors.Wrap(err, "reading the manifest"))
	}
	d, err := manifest.Digest(b)
	if err != nil {
		return c.fail(ctx, name, img.Digest, errors.Wrap(err, "computing the manifest digest"))
	}
	if img.Digest != "" && d != img.Digest {
		c.problem(name, img.Digest, errors.Wrapf(types.DigestMismatchError{Expected: img.Digest.String(), Actual: d.String(), ExpectedSize: -1, ActualSize: int64(len(b))},
			"manifest %s", img.Digest))
		return nil
	}
	if !c.first(d) {
		return nil // the same manifest under another name, checked already
	}
	if related && !manifest.IsFallbackTag(listedTag(img)) { // a referrers index is a listing
		c.count(func(r *Report) { r.Related++ })
	}
	if err := c.manifest(ctx, src, name, b, mimeType, d, 0); err != nil {
		return err
	}
	return c.related(ctx, src, name, subjects(b, mimeType, d), 0)
}

// relatedName reports whether a listed image is stored under the tag of what travels with an
// image (a cosign sha256-<hex>.sig digest tag, a referrers index's sha256-<hex> fallback tag):
// a registry repository lists those tags with its images. Check takes them last, so that they
// are checked with their image and counted as related; one whose image is not listed is
// checked on its own, and counted as related unless it is a referrers index (a listing).
func relatedName(img types.ListedImage) bool {
	tag := listedTag(img)
	return manifest.IsDigestTag(tag) || manifest.IsFallbackTag(tag)
}

// listedTag returns the tag of a listed image's name, "" when it has none.
func listedTag(img types.ListedImage) string {
	if tagged, ok := img.Name.(reference.Tagged); ok {
		return tagged.Tag()
	}
	return ""
}

// fail records err as a problem of name, unless the context ended, which stops the check.
func (c *checker) fail(ctx context.Context, name string, d digest.Digest, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.problem(name, d, err)
	return nil
}

// manifest checks manifest (or index) b, whose digest is d, and everything it references.
func (c *checker) manifest(ctx context.Context, src types.ImageSource, name string, b []byte, mimeType string, d digest.Digest, depth int) error {
	c.count(func(r *Report) { r.Manifests++ })
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(b)
	}
	if manifest.IsIndexType(mimeType) {
		return c.index(ctx, src, name, b, mimeType, d, depth)
	}
	m, err := manifest.FromBlob(b, mimeType)
	if err != nil {
		return c.fail(ctx, name, d, errors.Wrapf(err, "parsing manifest %s", d))
	}
	type ref struct {
		info types.BlobInfo
		what string
	}
	var refs []ref
	if cfg := m.ConfigInfo(); cfg.Digest != "" {
		refs = append(refs, ref{cfg, "config"})
	}
	for _, l := range m.LayerInfos() {
		refs = append(refs, ref{l.BlobInfo, "layer"})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallel)
	if !src.Properties().ConcurrentBlobs {
		g.SetLimit(1)
	}
	for _, r := range refs {
		if !c.first(r.info.Digest) {
			continue
		}
		g.Go(func() error { return c.blob(gctx, src, name, r.info, r.what, d) })
	}
	return g.Wait()
}

// index checks the instances of index b, whose digest is d.
func (c *checker) index(ctx context.Context, src types.ImageSource, name string, b []byte, mimeType string, d digest.Digest, depth int) error {
	if depth >= maxDepth {
		return c.fail(ctx, name, d, errors.Errorf("index %s: indexes nested more than %d levels deep", d, maxDepth))
	}
	idx, err := manifest.IndexFromBlob(b, mimeType)
	if err != nil {
		return c.fail(ctx, name, d, errors.Wrapf(err, "parsing index %s", d))
	}
	for _, inst := range idx.Instances() {
		if !c.first(inst.Digest) {
			continue
		}
		id := inst.Digest
		ib, imt, err := src.GetManifest(ctx, &id)
		if err != nil {
			if err := c.fail(ctx, name, id, errors.Wrapf(err, "manifest %s listed in index %s", id, d)); err != nil {
				return err
			}
			continue
		}
		if err := manifest.CheckDigest(ib, id, inst.Size); err != nil {
			c.problem(name, id, errors.Wrapf(err, "manifest %s listed in index %s", id, d))
			continue
		}
		if imt == "" {
			imt = inst.MediaType
		}
		if err := c.manifest(ctx, src, name, ib, imt, id, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// blob streams one blob through a digest and size check.
func (c *checker) blob(ctx context.Context, src types.ImageSource, name string, info types.BlobInfo, what string, parent digest.Digest) error {
	rc, size, err := src.GetBlob(ctx, info, types.GetBlobOptions{})
	if err != nil {
		if len(info.URLs) > 0 && errors.Is(err, types.ErrBlobNotFound) {
			logrus.WithFields(logrus.Fields{"digest": info.Digest, "image": name}).Debug("foreign layer not stored here; not checked")
			return nil
		}
		return c.fail(ctx, name, info.Digest, errors.Wrapf(err, "%s %s of manifest %s", what, info.Digest, parent))
	}
	defer rc.Close()
	if info.Size < 0 {
		info.Size = size
	}
	vr, err := verify.NewReader(rc, info.Digest, info.Size)
	if err != nil {
		return c.fail(ctx, name, info.Digest, errors.Wrapf(err, "%s %s of manifest %s", what, info.Digest, parent))
	}
	// A local source does not watch ctx while it streams: stop between reads.
	n, err := drain(ctxio.Reader(ctx, vr))
	if err != nil {
		return c.fail(ctx, name, info.Digest, errors.Wrapf(err, "%s %s of manifest %s", what, info.Digest, parent))
	}
	c.count(func(r *Report) { r.Blobs++; r.Bytes += n })
	return nil
}

var buffers = sync.Pool{New: func() any { return make([]byte, 1<<20) }}

// drain reads r to EOF in large reads (io.Discard would read it 8 KiB at a time).
func drain(r io.Reader) (int64, error) {
	buf := buffers.Get().([]byte)
	defer buffers.Put(buf)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
