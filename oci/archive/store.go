package archive

import (
	"context"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/archivefile"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

var (
	_ types.ImageLister       = reference{}
	_ types.TagLister         = reference{}
	_ types.ManifestDigester  = reference{}
	_ types.StoreTransport    = archiveTransport{}
	_ types.StoreReference    = storeReference{}
	_ types.StoreWriterOpener = storeReference{}
	_ types.ImageLister       = storeReference{}
)

// tempDir is where a compressed archive is decompressed for reading and where blobs of
// unknown size are spooled for writing ("" for the default).
func tempDir(sys *types.SystemContext) string {
	if sys == nil {
		return ""
	}
	return sys.BigFilesTemporaryDir
}

// archiveCompression returns how a written archive is compressed (see
// archivefile.ForWriting).
func archiveCompression(path string, sys *types.SystemContext) (string, error) {
	if sys == nil {
		return archivefile.ForWriting(path, "")
	}
	return archivefile.ForWriting(path, sys.ArchiveCompression)
}

// ListImages implements types.ImageLister: every entry of the archive's index.json, in index
// order, or the one image a name or digest selects.
func (r reference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	a, err := openArchive(ctx, r.path, tempDir(sys))
	if err != nil {
		return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
	}
	defer a.Close()
	images, err := layout.ListImagesFS(a.fsys(), r.path, r.name, r.digest, func(name string, d digest.Digest) (types.ImageReference, error) {
		return reference{path: r.path, name: name, digest: d}, nil
	})
	if err != nil {
		return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
	}
	return images, nil
}

// ManifestDigest implements types.ManifestDigester from the archive's index.json.
func (r reference) ManifestDigest(ctx context.Context, sys *types.SystemContext) (digest.Digest, error) {
	return layout.OnlyDigest(ctx, r, sys)
}

// ListTags implements types.TagLister: the names in the archive's index.json (see
// layout.IndexNames).
func (r reference) ListTags(ctx context.Context, sys *types.SystemContext) ([]string, error) {
	a, err := openArchive(ctx, r.path, tempDir(sys))
	if err != nil {
		return nil, errors.Wrapf(err, "listing tags in %s", types.ImageName(r))
	}
	defer a.Close()
	names, err := layout.IndexNames(a.fsys(), r.path)
	if err != nil {
		return nil, errors.Wrapf(err, "listing tags in %s", types.ImageName(r))
	}
	return names, nil
}

// ParseStoreReference implements types.StoreTransport: a store is an archive, PATH.
func (archiveTransport) ParseStoreReference(s string) (types.StoreReference, error) {
	ref, err := layout.ParseStore(s)
	if err != nil {
		return nil, err
	}
	return storeReference{path: ref.StringWithinTransport()}, nil
}

// storeReference is an oci-archive as a store of many images.
type storeReference struct {
	path string
}

// Transport implements types.StoreReference.
func (s storeReference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.StoreReference.
func (s storeReference) StringWithinTransport() string { return s.path }

// ImageReference implements types.StoreReference: name becomes the image's ref.name. Each
// image written through such a reference rewrites the archive on its own; a StoreWriter
// writes many at once.
func (s storeReference) ImageReference(name string) (types.ImageReference, error) {
	return imageInStore(s.path, name)
}

func imageInStore(path, name string) (reference, error) {
	if err := layout.CheckStoredName(name); err != nil {
		return reference{}, err
	}
	return reference{path: path, name: name}, nil
}

// NewStoreWriter implements types.StoreWriterOpener: the images written through the
// writer's references go into one new archive, made visible by its Commit.
func (s storeReference) NewStoreWriter(ctx context.Context, sys *types.SystemContext) (types.StoreWriter, error) {
	sess, err := newSession(ctx, s.path, sys)
	if err != nil {
		return nil, errors.Wrapf(err, "opening oci-archive:%s for writing", s.path)
	}
	return &storeWriter{s: sess}, nil
}

// ListImages implements types.ImageLister: every image in the archive.
func (s storeReference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	return reference{path: s.path}.ListImages(ctx, sys)
}
