package memtransport

import (
	"bytes"
	"context"
	"io"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// source reads one image of a store. It remembers the image's manifest digest when it is
// opened, so it serves one consistent image even if the name is overwritten meanwhile.
type source struct {
	ref imageRef
	top digest.Digest
}

var _ types.ImageSource = (*source)(nil)

// NewImageSource implements types.ImageReference. A name the store does not hold is
// ErrManifestNotFound.
func (r imageRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	top, ok := r.store.images[r.name]
	if !ok {
		return nil, errors.Wrapf(types.ErrManifestNotFound, "opening %s", types.ImageName(r))
	}
	return &source{ref: r, top: top}, nil
}

// Reference implements types.ImageSource.
func (s *source) Reference() types.ImageReference { return s.ref }

// Properties implements types.ImageSource: every method takes the store's lock, so blobs may
// be read concurrently.
func (s *source) Properties() types.SourceProperties {
	return types.SourceProperties{ConcurrentBlobs: true}
}

// GetManifest implements types.ImageSource.
func (s *source) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	d := s.top
	if instance != nil {
		d = *instance
	}
	s.ref.store.mu.Lock()
	m, ok := s.ref.store.manifests[d]
	s.ref.store.mu.Unlock()
	if !ok {
		return nil, "", errors.Wrapf(types.ErrManifestNotFound, "reading manifest %s of %s", d, types.ImageName(s.ref))
	}
	return m.body, m.mimeType, nil
}

// GetBlob implements types.ImageSource. The caller verifies what it reads (the copy engine
// always does), so the source only serves the bytes and their size.
func (s *source) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	s.ref.store.mu.Lock()
	b, ok := s.ref.store.blobs[info.Digest]
	s.ref.store.mu.Unlock()
	if !ok {
		return nil, 0, errors.Wrapf(types.ErrBlobNotFound, "fetching blob %s from %s", info.Digest, types.ImageName(s.ref))
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

// Close implements types.ImageSource.
func (s *source) Close() error { return nil }
