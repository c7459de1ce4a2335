package archive

import (
	"context"
	"strings"

	dref "github.com/distribution/reference"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/docker/tarfile"
	"github.com/imgcopy/imgcopy/internal/archivefile"
	"github.com/imgcopy/imgcopy/types"
)

var (
	_ types.StoreTransport    = archiveTransport{}
	_ types.StoreReference    = storeReference{}
	_ types.StoreWriterOpener = storeReference{}
	_ types.ImageLister       = storeReference{}
	_ types.StoreWriter       = (*storeWriter)(nil)
)

// ParseStoreReference implements types.StoreTransport: a store is an archive, PATH.
func (archiveTransport) ParseStoreReference(s string) (types.StoreReference, error) {
	path, rest, _ := strings.Cut(s, ":")
	if rest != "" {
		return nil, errors.Wrapf(types.ErrUsage, "%q names an image in %s; a store is given by its path alone", s, path)
	}
	if path == "" {
		return nil, errors.Wrap(types.ErrUsage, "docker-archive store without a path")
	}
	return storeReference{path: path}, nil
}

// storeReference is a docker-archive as a store of many images.
type storeReference struct {
	path string
}

// Transport implements types.StoreReference.
func (s storeReference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.StoreReference.
func (s storeReference) StringWithinTransport() string { return s.path }

// ImageReference implements types.StoreReference: name ("team/app:1", normalized as a RepoTag;
// no tag means latest) becomes the image's RepoTag. Each image written through such a
// reference rewrites the archive on its own; a StoreWriter writes many at once.
func (s storeReference) ImageReference(name string) (types.ImageReference, error) {
	named, err := storedName(name)
	if err != nil {
		return nil, err
	}
	return NewReference(s.path, named)
}

// storedName parses the name of an image in a store as a RepoTag: a digest next to the tag is
// dropped (RepoTags cannot hold one); a bare tag is refused.
func storedName(name string) (dref.NamedTagged, error) {
	if !strings.ContainsAny(name, ":@") { // a bare tag (types.StoreReference): no repository
		return nil, errors.Wrapf(types.ErrUsage, "a docker-archive names images NAME:TAG, and %q is a tag without a name", name)
	}
	n, err := dref.ParseNormalizedNamed(name)
	if err != nil {
		return nil, errors.Wrapf(types.ErrUsage, "invalid image name %q for a docker-archive: %v", name, err)
	}
	if nt, ok := n.(dref.NamedTagged); ok {
		return dref.WithTag(dref.TrimNamed(n), nt.Tag())
	}
	if _, ok := n.(dref.Digested); ok {
		return nil, errors.Wrapf(types.ErrUsage, "a docker-archive names images NAME:TAG, and %q has no tag", name)
	}
	return dref.TagNameOnly(n).(dref.NamedTagged), nil
}

// NewStoreWriter implements types.StoreWriterOpener: the images written through the
// writer's references go into one new archive, made visible by its Commit.
func (s storeReference) NewStoreWriter(ctx context.Context, sys *types.SystemContext) (types.StoreWriter, error) {
	opts, err := writerOptions(s.path, sys)
	if err != nil {
		return nil, err
	}
	w, err := tarfile.NewWriter(ctx, s.path, opts)
	if err != nil {
		return nil, err
	}
	return &storeWriter{w: w}, nil
}

// ListImages implements types.ImageLister: every image in the archive.
func (s storeReference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	r, err := NewReference(s.path, nil)
	if err != nil {
		return nil, err
	}
	return r.(*reference).ListImages(ctx, sys)
}

// storeWriter builds one archive holding several images; blobs they share are stored once.
type storeWriter struct {
	w *tarfile.Writer
}

// ImageReference implements types.StoreWriter: a destination of the returned reference adds
// an image, tagged name, to the archive; committing it lists the image without finishing the
// file.
func (sw *storeWriter) ImageReference(name string) (types.ImageReference, error) {
	named, err := storedName(name)
	if err != nil {
		return nil, err
	}
	r, err := NewReference(sw.w.Path(), named)
	if err != nil {
		return nil, err
	}
	r.(*reference).writer = sw.w
	return r, nil
}

// Commit implements types.StoreWriter: it finishes the archive and renames it into place. It
// fails, leaving the path as it was, when no image was committed.
func (sw *storeWriter) Commit(ctx context.Context) error {
	return sw.w.Commit(ctx)
}

// Close implements types.StoreWriter: without a Commit, nothing changes at the path.
func (sw *storeWriter) Close() error {
	sw.w.Abort()
	return nil
}

// writerOptions maps the SystemContext onto tarfile.WriterOptions; sys may be nil.
func writerOptions(path string, sys *types.SystemContext) (tarfile.WriterOptions, error) {
	if sys == nil {
		sys = &types.SystemContext{}
	}
	compression, err := archivefile.ForWriting(path, sys.ArchiveCompression)
	return tarfile.WriterOptions{Classic: sys.DockerArchiveClassic, TempDir: sys.BigFilesTemporaryDir, Compression: compression,
		Resume: sys.Resume, NoFsync: sys.NoFsync}, err
}
