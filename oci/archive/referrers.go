package archive

import (
	"bytes"
	"context"
	"slices"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// Referrers and tagged manifests are kept in an archive as in a layout (see oci/layout's
// referrers.go); they become visible with the image, in the one rename of the session's
// commit, under the same lock as every other writer of the archive.

var (
	_ types.ReferrersLister    = (*destination)(nil)
	_ types.RelatedDestination = (*destination)(nil)
)

// ListReferrers implements types.ReferrersLister: the referrers indexes of the archive as it
// was when the session started.
func (d *destination) ListReferrers(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	descs, err := d.s.listReferrers(subject)
	if err != nil {
		return nil, errors.Wrapf(err, "listing referrers of %s in %s", subject, types.ImageName(d.ref))
	}
	return descs, nil
}

// PutRelatedManifest implements types.RelatedDestination: the manifest is stored like the
// image's, and named or recorded as a referrer in index.json when the session commits.
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
	if err := d.s.store.AddBlob(r.Desc.Digest, r.Desc.Size, bytes.NewReader(body), blobMember(r.Desc.Digest)); err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", r.Desc.Digest, types.ImageName(d.ref))
	}
	if ok {
		d.mu.Lock()
		d.related = append(d.related, r)
		d.mu.Unlock()
	}
	return nil
}

// relatedWithTop returns the related manifests to record at Commit: those written with
// PutRelatedManifest and the image itself when it refers to a subject.
func (d *destination) relatedWithTop(top imgspecv1.Descriptor) []layout.Related {
	d.mu.Lock()
	defer d.mu.Unlock()
	related := slices.Clone(d.related)
	if r, ok, err := layout.RelatedOf(d.topBody, top.MediaType, ""); err == nil && ok {
		related = append(related, r)
	}
	return related
}

// listReferrers lists the referrers of subject in the archive the session replaces.
func (s *session) listReferrers(subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.old == nil {
		return []imgspecv1.Descriptor{}, nil
	}
	idx, err := s.old.index(s.path)
	if err != nil {
		return nil, err
	}
	return layout.ListReferrersFS(s.old.fsys(), idx, subject, s.path)
}

// recordRelated records the session's related manifests in idx, adding new referrers indexes
// to the new archive; cur is the archive now at PATH (nil if none) and the caller holds s.mu
// and the directory lock.
func (s *session) recordRelated(idx *imgspecv1.Index, cur *openedArchive) (*imgspecv1.Index, error) {
	if len(s.related) == 0 {
		return idx, nil
	}
	idx, blobs, err := layout.UpdateRelated(idx, s.related, func(desc imgspecv1.Descriptor) ([]byte, error) {
		if cur == nil {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "referrers index %s", desc.Digest)
		}
		return readIndexBlob(cur, desc)
	})
	if err != nil {
		return nil, err
	}
	for dg, b := range blobs {
		if err := s.store.AddBlob(dg, int64(len(b)), bytes.NewReader(b), blobMember(dg)); err != nil {
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
	if err := manifest.CheckDigest(b, desc.Digest, desc.Size); err != nil {
		return nil, err
	}
	return b, nil
}
