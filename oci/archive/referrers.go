package archive

import (
	"bytes"
	"context"
	"slices"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// Referrers and tagged manifests are kept in an archive as in a layout (see oci/layout's
// referrers.go); they become visible with the image, in the one rename of Commit, under the
// same lock as every other writer of the archive.

var (
	_ types.ReferrersLister    = (*destination)(nil)
	_ types.RelatedDestination = (*destination)(nil)
)

// ListReferrers implements types.ReferrersLister: the referrers indexes of the archive as it
// was when the destination was opened.
func (d *destination) ListReferrers(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.old == nil {
		return []imgspecv1.Descriptor{}, nil
	}
	fsys := tarFS{d.old.ix}
	idx, err := d.old.index(d.ref.path)
	if err == nil {
		var descs []imgspecv1.Descriptor
		if descs, err = layout.ListReferrersFS(fsys, idx, subject, d.ref.path); err == nil {
			return descs, nil
		}
	}
	return nil, errors.Wrapf(err, "listing referrers of %s in %s", subject, types.ImageName(d.ref))
}

// PutRelatedManifest implements types.RelatedDestination: the manifest is appended like the
// image's, and named or recorded as a referrer in index.json at Commit.
func (d *destination) PutRelatedManifest(ctx context.Context, body []byte, mimeType string, opts types.PutRelatedOptions) error {
	if opts.Tag != "" {
		if err := layout.ValidateRefName(opts.Tag); err != nil {
			return err
		}
	}
	r, ok, err := layout.RelatedOf(body, mimeType, opts.Tag)
	if err != nil {
		return errors.Wrapf(err, "writing manifest to %s", types.ImageName(d.ref))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.appendBlob(r.Desc.Digest, bytes.NewReader(body), r.Desc.Size); err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", r.Desc.Digest, types.ImageName(d.ref))
	}
	if ok {
		d.related = append(d.related, r)
	}
	return nil
}

// recordRelated records the related manifests (and the image, when it refers to a subject)
// in idx, appending new referrers indexes; cur is the archive now at PATH (nil if none) and
// the caller holds d.mu and the lock.
func (d *destination) recordRelated(idx *imgspecv1.Index, cur *openedArchive) (*imgspecv1.Index, error) {
	related := d.related
	if top, ok, err := layout.RelatedOf(d.topBody, d.top.MediaType, ""); err == nil && ok {
		related = append(slices.Clone(related), top)
	}
	if len(related) == 0 {
		return idx, nil
	}
	idx, blobs, err := layout.UpdateRelated(idx, related, func(desc imgspecv1.Descriptor) ([]byte, error) {
		if cur == nil {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "referrers index %s", desc.Digest)
		}
		return readIndexBlob(cur, desc)
	})
	if err != nil {
		return nil, err
	}
	for dg, b := range blobs {
		if err := d.appendBlob(dg, bytes.NewReader(b), int64(len(b))); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// readIndexBlob reads an index blob of cur and checks it against its descriptor.
func readIndexBlob(cur *openedArchive, desc imgspecv1.Descriptor) ([]byte, error) {
	p, err := layout.BlobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	sr, err := cur.ix.Open(p)
	if err != nil {
		return nil, errors.Wrapf(types.ErrManifestNotFound, "referrers index %s is missing from the archive", desc.Digest)
	}
	b, err := iolimits.ReadAtMost(sr, iolimits.MaxManifestBodySize)
	if err != nil {
		return nil, err
	}
	if actual := desc.Digest.Algorithm().FromBytes(b); actual != desc.Digest || int64(len(b)) != desc.Size {
		return nil, types.DigestMismatchError{Expected: desc.Digest.String(), Actual: actual.String(), ExpectedSize: desc.Size, ActualSize: int64(len(b))}
	}
	return b, nil
}
