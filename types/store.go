package types

import (
	"context"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// This file holds the interfaces for working with sets of images (sync, bundles): listing the
// images a reference selects, resolving a manifest digest cheaply, and naming images inside a
// store that holds many of them.

// ListedImage is one image found by an ImageLister.
type ListedImage struct {
	// Ref opens exactly this image (and nothing else) as a source.
	Ref ImageReference
	// Name is the name the image carries in its storage: the registry repository and tag, an
	// OCI layout's org.opencontainers.image.ref.name, a docker-archive RepoTag. It is nil when
	// the image has none (an unnamed layout entry or archive image), or when the stored name
	// is not a registry-style reference (a bare tag "v1" in a layout written by skopeo).
	Name reference.Named
	// StoredName is the name exactly as the storage records it: a registry tag, an OCI
	// ref.name (a bare tag or a full reference), a RepoTag, a dir store's path relative to the
	// store ("team/app:1"). "" when the image has none. Giving it to the store's
	// StoreReference.ImageReference names the same image in another store of the same kind.
	StoredName string
	// Digest is the top-level manifest digest when the lister knows it without fetching the
	// manifest (local transports), "" otherwise (registries: use ManifestDigester).
	Digest digest.Digest
	// MIMEType is the top-level manifest type when known, "" otherwise.
	MIMEType string
	// SeparateBlobs is set when the image keeps its own copy of every blob (a dir: store has a
	// directory per image): a blob it shares with another image of the store is stored, and
	// must be checked, once per image.
	SeparateBlobs bool
}

// ImageLister is implemented by references that may select several images: a registry
// repository (every tag, when the reference was written without a tag or digest), an OCI
// layout, oci-archive or docker-archive without an image name (every image in it). A
// reference that names one image lists just that image. ListImages returns the images in a
// stable order (tags sorted, layout and archive entries in storage order); an empty store
// gives an empty list, not an error.
type ImageLister interface {
	ListImages(ctx context.Context, sys *SystemContext) ([]ListedImage, error)
}

// ManifestDigester is implemented by references whose top-level manifest digest can be found
// without fetching the manifest: a registry answers a HEAD (which Docker Hub does not count
// against pull limits), a layout reads its index. ManifestDigest returns ErrManifestNotFound
// (wrapped) when the reference names no image.
type ManifestDigester interface {
	ManifestDigest(ctx context.Context, sys *SystemContext) (digest.Digest, error)
}

// StoreTransport is implemented by transports that can name a store of many images: a
// registry host or a repository prefix on it, an OCI layout, an archive, a directory of dir:
// images. A store is where a sync or a bundle writes a whole selection of images.
type StoreTransport interface {
	// ParseStoreReference parses the part of a store name after "NAME:", e.g.
	// "//registry.example:5000/mirror" for docker or "/srv/bundle" for oci.
	ParseStoreReference(s string) (StoreReference, error)
}

// StoreReference names a store of many images. Like an ImageReference it is a value: parsing
// one never touches disk or network.
type StoreReference interface {
	Transport() ImageTransport
	// StringWithinTransport returns the store as the user would type it after "NAME:".
	StringWithinTransport() string
	// ImageReference returns the reference of the image called name in the store. name is a
	// repository path relative to the store with a tag, a digest or both ("team/app:1",
	// "app@sha256:…"): a registry store puts it under its prefix, a layout or an archive
	// records it as the image's name (ref.name, RepoTag), a dir store makes it a
	// subdirectory. A name with neither ":" nor "@" is kept as it is by layouts, oci-archives
	// and dir stores (a bare tag, as skopeo names layout entries), refused by a docker-archive
	// (RepoTags need NAME:TAG) and taken as a repository by a registry store (a reference
	// that lists every tag). It returns an error wrapping ErrUsage when name is not valid
	// there.
	ImageReference(name string) (ImageReference, error)
}

// StoreWriterOpener is implemented by StoreReferences whose images must become visible
// together, because the store is rewritten as a whole (an archive). Stores without it
// (registries, layouts, dir) commit every image on its own.
type StoreWriterOpener interface {
	NewStoreWriter(ctx context.Context, sys *SystemContext) (StoreWriter, error)
}

// StoreWriter writes many images into one store in one session. Destinations opened on the
// references it returns write into the session, may run concurrently, and their Commit adds
// the image to the session without making it visible; the writer's Commit then makes every
// image committed so far visible at once (images already in the store and not replaced are
// kept). Close releases everything; after a failed or missing Commit the store is unchanged.
type StoreWriter interface {
	// ImageReference is StoreReference.ImageReference for an image written by this session.
	ImageReference(name string) (ImageReference, error)
	Commit(ctx context.Context) error
	Close() error
}
