package memtransport

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Store is an in-memory store of images and the transport that reaches it. Its methods are
// safe for concurrent use.
type Store struct {
	name string

	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	manifests map[digest.Digest]storedManifest
	images    map[string]digest.Digest // image name -> top-level manifest digest
}

type storedManifest struct {
	body     []byte
	mimeType string
}

var _ types.ImageTransport = (*Store)(nil)

// New returns an empty store whose transport is called name, e.g. "mem".
func New(name string) *Store {
	return &Store{
		name:      name,
		blobs:     map[digest.Digest][]byte{},
		manifests: map[digest.Digest]storedManifest{},
		images:    map[string]digest.Digest{},
	}
}

// Name implements types.ImageTransport.
func (s *Store) Name() string { return s.name }

// ParseReference implements types.ImageTransport: ref is the image name. Like every
// reference parser it never touches the storage, and a malformed reference is a usage error.
func (s *Store) ParseReference(ref string) (types.ImageReference, error) {
	if ref == "" || strings.ContainsFunc(ref, func(r rune) bool { return r < ' ' }) {
		return nil, types.UsageError{Err: errors.Errorf("%s: invalid image name %q", s.name, ref)}
	}
	return imageRef{store: s, name: ref}, nil
}

// Digests returns the digests of every blob and manifest the store holds, sorted; tests use
// it to see that a failed write left nothing behind.
func (s *Store) Digests() []digest.Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := make([]digest.Digest, 0, len(s.blobs)+len(s.manifests))
	for d := range s.blobs {
		res = append(res, d)
	}
	for d := range s.manifests {
		res = append(res, d)
	}
	slices.Sort(res)
	return res
}

// imageRef names one image of a store. It is a value: parsing and copying it is free.
type imageRef struct {
	store *Store
	name  string
}

var (
	_ types.ImageReference = imageRef{}
	_ types.TagLister      = imageRef{}
	_ types.ImageDeleter   = imageRef{}
)

// Transport implements types.ImageReference.
func (r imageRef) Transport() types.ImageTransport { return r.store }

// StringWithinTransport implements types.ImageReference.
func (r imageRef) StringWithinTransport() string { return r.name }

// DockerReference implements types.ImageReference: the name when it reads as a registry
// name with a tag ("team/app:1.0"), nil otherwise.
func (r imageRef) DockerReference() reference.Named {
	named, err := reference.ParseNormalizedNamed(r.name)
	if err != nil {
		return nil
	}
	if _, ok := named.(reference.NamedTagged); !ok {
		return nil
	}
	return named
}

// ListTags implements types.TagLister: the names of every image in the store, sorted.
func (r imageRef) ListTags(ctx context.Context, sys *types.SystemContext) ([]string, error) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	names := make([]string, 0, len(r.store.images))
	for name := range r.store.images {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// DeleteImage implements types.ImageDeleter. It removes the name only; the blobs stay, as
// other images may share them (a real store would collect the unreferenced ones).
func (r imageRef) DeleteImage(ctx context.Context, sys *types.SystemContext) error {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	if _, ok := r.store.images[r.name]; !ok {
		return errors.Wrapf(types.ErrManifestNotFound, "deleting %s", types.ImageName(r))
	}
	delete(r.store.images, r.name)
	return nil
}
