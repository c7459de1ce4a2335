package archive

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

var _ types.ImageDestination = (*destination)(nil)

// destination writes one image into a session: its own (a plain oci-archive:PATH:NAME, whose
// Commit commits the session) or a StoreWriter's (whose Commit commits them all).
type destination struct {
	ref  reference
	s    *session
	owns bool

	top atomic.Pointer[imgspecv1.Descriptor] // the top-level manifest, once written

	mu      sync.Mutex
	topBody []byte           // the top-level manifest, which may refer to a subject
	related []layout.Related // manifests to name or record as referrers at Commit (referrers.go)
}

func newImageDestination(ctx context.Context, r reference, sys *types.SystemContext) (*destination, error) {
	if r.session != nil {
		return &destination{ref: r, s: r.session}, nil
	}
	s, err := newSession(ctx, r.path, sys)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	return &destination{ref: r, s: s, owns: true}, nil
}

// Reference implements types.ImageDestination.
func (d *destination) Reference() types.ImageReference { return d.ref }

// Properties implements types.ImageDestination. Like a layout, an archive stores any
// manifest type as it is, and schema1 is of no use there; foreign layers may stay references.
func (d *destination) Properties() types.DestinationProperties {
	return types.DestinationProperties{
		AcceptsIndex: true, ConcurrentBlobs: true, AcceptsForeignLayerURLs: true,
		UnusableManifestMIMETypes: layout.UnusableManifestMIMETypes(),
	}
}

// TryReusingBlob implements types.ImageDestination: blobs already written (waiting for one
// that another image of the session is writing right now), and blobs of the archive being
// replaced (they are carried over at Commit).
func (d *destination) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	if info.Digest == "" {
		return types.ReusedBlob{}, false, errors.New("checking for a blob with an unknown digest")
	}
	if err := info.Digest.Validate(); err != nil {
		return types.ReusedBlob{}, false, errors.Wrapf(err, "invalid digest %q", info.Digest)
	}
	if !opts.AcceptsOriginal() {
		return types.ReusedBlob{}, false, nil // another compression is required
	}
	size, ok, err := d.s.reuse(ctx, info.Digest, info.Size)
	if err != nil {
		return types.ReusedBlob{}, false, err
	}
	if !ok {
		if b, kept := d.s.store.Salvage(ctx, info.Digest, info.Size, blobMember(info.Digest)); kept {
			return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: b.Size, MediaType: info.MediaType}, Kept: true}, true, nil
		}
	}
	if !ok || (info.Size >= 0 && info.Size != size) {
		return types.ReusedBlob{}, false, nil
	}
	return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: size, MediaType: info.MediaType}}, true, nil
}

// KeepsPartialBlob implements types.PartialBlobKeeper (see tarstore.Store.KeepsPartial): with
// resuming on, a blob pulled into the archive is written once, not also as a partial
// download, and what a killed or interrupted copy wrote of it is offered to the next.
func (d *destination) KeepsPartialBlob(info types.BlobInfo) (bool, io.ReadCloser, int64) {
	return d.s.store.KeepsPartial(info.Digest, info.Size)
}

// PutBlob implements types.ImageDestination (see tarstore.Store.Put): a blob of known digest
// and size streams straight into the archive, concurrently with other blobs.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	dg, size, err := d.s.store.Put(ctx, r, info.Digest, info.Size, opts.Verified, blobMember)
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	return types.BlobInfo{Digest: dg, Size: size, MediaType: info.MediaType}, nil
}

// PutManifest implements types.ImageDestination.
func (d *destination) PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error {
	dg, err := manifest.DigestFor(body, instance)
	if err != nil {
		return errors.Wrapf(err, "writing manifest to %s", types.ImageName(d.ref))
	}
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(body)
	}
	if err := d.s.store.AddBlob(dg, int64(len(body)), bytes.NewReader(body), blobMember(dg)); err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", dg, types.ImageName(d.ref))
	}
	if instance == nil {
		d.mu.Lock()
		d.topBody = body
		d.mu.Unlock()
		d.top.Store(&imgspecv1.Descriptor{MediaType: mimeType, Digest: dg, Size: int64(len(body))})
	}
	return nil
}

// Commit implements types.ImageDestination: the image joins its session, and a session of
// its own is committed at once (see session.finish): under the directory lock, the blobs of
// the archive now at PATH that its other images need are carried over, index.json is
// appended and the new archive renamed over PATH.
func (d *destination) Commit(ctx context.Context, opts types.CommitOptions) error {
	top := d.top.Load()
	if top == nil {
		return errors.Errorf("committing %s: no manifest was written", types.ImageName(d.ref))
	}
	d.s.add(*top, d.ref.name, d.relatedWithTop(*top))
	if !d.owns {
		return nil
	}
	if err := d.s.commit(ctx); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	return nil
}

// Close implements types.ImageDestination. Without a successful Commit of its own session,
// the temporary archive is removed and PATH is left as it was.
func (d *destination) Close() error {
	if d.owns {
		d.s.abort()
	}
	return nil
}
