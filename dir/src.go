package dir

import (
	"context"
	"io"
	"io/fs"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

var _ types.ImageSource = (*source)(nil)

// source reads an image from a directory. Every file is opened through an os.Root, so a
// symlink inside the directory can never lead outside it.
type source struct {
	ref  reference
	root *os.Root
}

func newImageSource(r reference) (*source, error) {
	root, err := os.OpenRoot(r.path)
	if err != nil {
		err = pathformat.NotDirectory("dir", r.path, false, err)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "opening %s: directory %s does not exist", types.ImageName(r), r.path)
		}
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
	}
	if err := checkVersion(root, r); err != nil {
		root.Close()
		return nil, err
	}
	return &source{ref: r, root: root}, nil
}

// checkVersion refuses a directory whose version file names a format we do not know. A
// missing version file is accepted, as skopeo does, because hand-made directories omit it.
func checkVersion(root *os.Root, r reference) error {
	f, err := root.Open(versionFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errors.Wrapf(err, "reading %s", r.file(versionFile))
	}
	defer f.Close()
	b, err := iolimits.ReadAtMost(f, 1024)
	if err != nil {
		return errors.Wrapf(err, "reading %s", r.file(versionFile))
	}
	v := string(b)
	if !strings.HasPrefix(v, "Directory Transport Version: 1.") {
		return errors.Errorf("%s: unsupported directory transport version %q", r.file(versionFile), strings.TrimSpace(v))
	}
	return nil
}

// Reference implements types.ImageSource.
func (s *source) Reference() types.ImageReference { return s.ref }

// Properties implements types.ImageSource.
func (s *source) Properties() types.SourceProperties {
	return types.SourceProperties{ConcurrentBlobs: true}
}

// GetManifest implements types.ImageSource. An instance manifest is checked against its
// digest, since its file name is the only thing that ties it to the index.
func (s *source) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	name, err := manifestName(instance)
	if err != nil {
		return nil, "", err
	}
	f, err := s.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if werr := layoutNotDir(s.root.FS(), s.ref.path); werr != nil && instance == nil {
				return nil, "", errors.Wrapf(werr, "reading %s from %s", name, types.ImageName(s.ref))
			}
			return nil, "", errors.Wrapf(types.ErrManifestNotFound, "reading %s from %s", name, types.ImageName(s.ref))
		}
		return nil, "", errors.Wrapf(err, "reading %s", s.ref.file(name))
	}
	defer f.Close()
	b, err := iolimits.ReadAtMost(f, iolimits.MaxManifestBodySize)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading %s", s.ref.file(name))
	}
	if instance != nil {
		if err := manifest.CheckDigest(b, *instance, -1); err != nil {
			return nil, "", errors.Wrapf(err, "%s does not match its name", s.ref.file(name))
		}
	}
	return b, manifest.GuessMIMEType(b), nil
}

// GetBlob implements types.ImageSource.
func (s *source) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	name, err := blobName(info.Digest)
	if err != nil {
		return nil, -1, err
	}
	f, err := s.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, -1, errors.Wrapf(types.ErrBlobNotFound, "fetching blob %s from %s", info.Digest, types.ImageName(s.ref))
		}
		return nil, -1, errors.Wrapf(err, "fetching blob %s from %s", info.Digest, types.ImageName(s.ref))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, -1, errors.Wrapf(err, "fetching blob %s from %s", info.Digest, types.ImageName(s.ref))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, -1, errors.Errorf("%s: blob %s is not a regular file", s.ref.file(name), info.Digest)
	}
	return f, fi.Size(), nil
}

// Close implements types.ImageSource.
func (s *source) Close() error { return s.root.Close() }
