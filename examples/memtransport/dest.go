package memtransport

import (
	"bytes"
	"context"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// destination writes one image into a store. Blobs and manifests are staged in the
// destination and published together by Commit, so nothing of an unfinished copy is ever
// visible, and Close without Commit simply drops the staging.
type destination struct {
	ref imageRef

	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	manifests map[digest.Digest]storedManifest
	top       *storedManifest
}

var (
	_ types.ImageDestination = (*destination)(nil)
	_ types.ManifestChecker  = (*destination)(nil)
)

// NewImageDestination implements types.ImageReference.
func (r imageRef) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	return &destination{ref: r, blobs: map[digest.Digest][]byte{}, manifests: map[digest.Digest]storedManifest{}}, nil
}

// Reference implements types.ImageDestination.
func (d *destination) Reference() types.ImageReference { return d.ref }

// Properties implements types.ImageDestination: any manifest type is stored as it comes
// (so copies never convert and digests survive), indexes too, and blob calls may overlap.
func (d *destination) Properties() types.DestinationProperties {
	return types.DestinationProperties{AcceptsIndex: true, ConcurrentBlobs: true}
}

// TryReusingBlob implements types.ImageDestination: a blob this session staged or the store
// holds, with the announced size when one is given, is reused, unless the copy requires a
// compression the blob may not have (opts.RequiredCompression). The store keeps no other
// compressions of a blob, so it never substitutes one.
func (d *destination) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	if !opts.AcceptsOriginal() {
		return types.ReusedBlob{}, false, nil
	}
	b, ok := d.blob(info.Digest)
	if !ok || (info.Size >= 0 && int64(len(b)) != info.Size) {
		return types.ReusedBlob{}, false, nil
	}
	return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: int64(len(b)), MediaType: info.MediaType}}, true, nil
}

// blob returns a staged or stored blob.
func (d *destination) blob(dg digest.Digest) ([]byte, bool) {
	d.mu.Lock()
	b, ok := d.blobs[dg]
	d.mu.Unlock()
	if ok {
		return b, true
	}
	d.ref.store.mu.Lock()
	defer d.ref.store.mu.Unlock()
	b, ok = d.ref.store.blobs[dg]
	return b, ok
}

// PutBlob implements types.ImageDestination. It reads r to EOF, watching ctx, and checks the
// digest and size before staging the blob, so a failing, cancelled or wrong stream stages
// nothing. With opts.Verified the caller checks the digest as it streams and fails the read
// at EOF on a mismatch, so hashing again is skipped; the size is still counted.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var digester digest.Digester
	if !opts.Verified || info.Digest == "" {
		digester = digest.Canonical.Digester()
		if info.Digest != "" && info.Digest.Validate() == nil && info.Digest.Algorithm().Available() {
			digester = info.Digest.Algorithm().Digester()
		}
		w = io.MultiWriter(&buf, digester.Hash())
	}
	n, err := io.Copy(w, ctxReader{ctx: ctx, r: r})
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	got := info.Digest
	if digester != nil {
		got = digester.Digest()
	}
	if (info.Digest != "" && got != info.Digest) || (info.Size >= 0 && n != info.Size) {
		return types.BlobInfo{}, errors.Wrapf(types.DigestMismatchError{Expected: info.Digest.String(), Actual: got.String(), ExpectedSize: info.Size, ActualSize: n},
			"storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	d.mu.Lock()
	d.blobs[got] = buf.Bytes()
	d.mu.Unlock()
	return types.BlobInfo{Digest: got, Size: n, MediaType: info.MediaType}, nil
}

// ctxReader stops a stream once its context ends, so a cancelled copy stops mid-blob.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// PutManifest implements types.ImageDestination. An instance manifest must have the digest
// it is written under (manifest.Digest also knows signed schema1 manifests).
func (d *destination) PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error {
	m := storedManifest{body: bytes.Clone(body), mimeType: mimeType}
	d.mu.Lock()
	defer d.mu.Unlock()
	if instance == nil {
		d.top = &m
		return nil
	}
	if got, err := manifest.Digest(body); err != nil || got != *instance {
		return errors.Errorf("writing manifest %s to %s: its bytes have digest %s (%v)", *instance, types.ImageName(d.ref), got, err)
	}
	d.manifests[*instance] = m
	return nil
}

// Commit implements types.ImageDestination: under the store's lock it checks that the image
// is complete (every blob and instance its manifest needs is staged or stored), then
// publishes the staging and names the image, all at once.
func (d *destination) Commit(ctx context.Context, opts types.CommitOptions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.top == nil {
		return errors.Errorf("committing %s: no manifest was written", types.ImageName(d.ref))
	}
	top, err := manifest.Digest(d.top.body)
	if err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	s := d.ref.store
	s.mu.Lock()
	defer s.mu.Unlock()
	has := func(dg digest.Digest) ([]byte, string, bool) {
		if dg == top {
			return d.top.body, d.top.mimeType, true
		}
		if m, ok := d.manifests[dg]; ok {
			return m.body, m.mimeType, true
		}
		if m, ok := s.manifests[dg]; ok {
			return m.body, m.mimeType, true
		}
		return nil, "", false
	}
	hasBlob := func(dg digest.Digest) bool {
		_, staged := d.blobs[dg]
		_, stored := s.blobs[dg]
		return staged || stored
	}
	if err := complete(top, has, hasBlob); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	for dg, b := range d.blobs {
		s.blobs[dg] = b
	}
	for dg, m := range d.manifests {
		s.manifests[dg] = m
	}
	s.manifests[top] = *d.top
	s.images[d.ref.name] = top
	return nil
}

// HasManifest implements types.ManifestChecker: the store holds the manifest and everything
// it references, so a warm re-copy can skip every blob.
func (d *destination) HasManifest(ctx context.Context, dg digest.Digest) (bool, error) {
	s := d.ref.store
	s.mu.Lock()
	defer s.mu.Unlock()
	has := func(dg digest.Digest) ([]byte, string, bool) {
		m, ok := s.manifests[dg]
		return m.body, m.mimeType, ok
	}
	hasBlob := func(dg digest.Digest) bool { _, ok := s.blobs[dg]; return ok }
	err := complete(dg, has, hasBlob)
	if errors.Is(err, types.ErrManifestNotFound) || errors.Is(err, types.ErrBlobNotFound) {
		return false, nil
	}
	return err == nil, err
}

// complete checks that manifest dg, and for an index every instance, is present with its
// config and layers; the lookups say what is present.
func complete(dg digest.Digest, manifestOf func(digest.Digest) ([]byte, string, bool), hasBlob func(digest.Digest) bool) error {
	body, mimeType, ok := manifestOf(dg)
	if !ok {
		return errors.Wrapf(types.ErrManifestNotFound, "manifest %s", dg)
	}
	if manifest.IsIndexType(mimeType) {
		idx, err := manifest.IndexFromBlob(body, mimeType)
		if err != nil {
			return err
		}
		for _, inst := range idx.Instances() {
			if err := complete(inst.Digest, manifestOf, hasBlob); err != nil {
				return err
			}
		}
		return nil
	}
	m, err := manifest.FromBlob(body, mimeType)
	if err != nil {
		return err
	}
	blobs := []types.BlobInfo{m.ConfigInfo()}
	for _, l := range m.LayerInfos() {
		blobs = append(blobs, l.BlobInfo)
	}
	for _, b := range blobs {
		if b.Digest != "" && len(b.URLs) == 0 && !hasBlob(b.Digest) {
			return errors.Wrapf(types.ErrBlobNotFound, "blob %s of manifest %s", b.Digest, dg)
		}
	}
	return nil
}

// Close implements types.ImageDestination: without a Commit the staging is dropped and the
// store is unchanged.
func (d *destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.blobs, d.manifests, d.top = nil, nil, nil
	return nil
}
