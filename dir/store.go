package dir

import (
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	dockerref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

var (
	_ types.ImageLister      = reference{}
	_ types.ManifestDigester = reference{}
	_ types.StoreTransport   = dirTransport{}
	_ types.StoreReference   = storeReference{}
	_ types.ImageLister      = storeReference{}
)

// ParseStoreReference implements types.StoreTransport: a store is a directory holding one
// subdirectory per image, named as the image ("team/app:1" is STORE/team/app:1), as skopeo
// sync writes it.
func (dirTransport) ParseStoreReference(s string) (types.StoreReference, error) {
	if _, err := NewReference(s); err != nil {
		return nil, types.UsageError{Err: err}
	}
	return storeReference{path: s}, nil
}

// storeReference is a directory of dir: images.
type storeReference struct {
	path string
}

// Transport implements types.StoreReference.
func (s storeReference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.StoreReference.
func (s storeReference) StringWithinTransport() string { return s.path }

// ImageReference implements types.StoreReference: the image lives in the subdirectory name.
// Its DockerReference is name, normalized.
func (s storeReference) ImageReference(name string) (types.ImageReference, error) {
	named, err := dockerref.ParseNormalizedNamed(name)
	if err != nil {
		return nil, errors.Wrapf(types.ErrUsage, "invalid image name %q: %v", name, err)
	}
	if !filepath.IsLocal(name) || path.Clean(name) != name {
		return nil, errors.Wrapf(types.ErrUsage, "image name %q is not a plain relative path", name)
	}
	return reference{path: filepath.Join(s.path, filepath.FromSlash(name)), name: named}, nil
}

// ListImages implements types.ImageLister: every image in the store.
func (s storeReference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	return reference{path: s.path}.ListImages(ctx, sys)
}

// ListImages implements types.ImageLister: the image in dir:PATH when PATH holds one, else
// every image in the subdirectories of PATH (a store), in lexical order, each named by its
// path relative to PATH.
func (r reference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	root, err := os.OpenRoot(r.path)
	if err != nil {
		err = pathformat.NotDirectory("dir", r.path, false, err)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "listing images in %s: directory %s does not exist", types.ImageName(r), r.path)
		}
		return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
	}
	defer root.Close()
	if err := layoutNotDir(root.FS(), r.path); err != nil {
		return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
	}
	res := []types.ListedImage{}
	err = fs.WalkDir(root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() || (p != "." && (staging.IsTemporary(e.Name()) || strings.HasPrefix(e.Name(), "."))) {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		d, ok, err := imageDigest(root.FS(), p)
		if err != nil || !ok {
			return err
		}
		img := types.ListedImage{Ref: r, Digest: d, Name: r.name, SeparateBlobs: true}
		if p != "." {
			img.Ref, img.StoredName = reference{path: filepath.Join(r.path, filepath.FromSlash(p))}, p
			if n, err := dockerref.ParseNormalizedNamed(p); err == nil {
				img.Name = n
				img.Ref = reference{path: filepath.Join(r.path, filepath.FromSlash(p)), name: n}
			}
		}
		res = append(res, img)
		return fs.SkipDir // an image directory holds no further images
	})
	if err != nil {
		return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
	}
	return res, nil
}

// imageDigest returns the digest of the manifest in directory p, if it holds an image.
// layoutNotDir returns a types.WrongFormatError when fsys, the directory path, holds an OCI
// image layout (an oci-layout file) and no dir: image (no manifest.json): read as a dir:
// store it would list nothing, and as a dir: image it has no manifest.
func layoutNotDir(fsys fs.FS, path string) error {
	if _, err := fs.Stat(fsys, manifestFile); err == nil {
		return nil
	}
	if _, err := fs.Stat(fsys, "oci-layout"); err != nil {
		return nil
	}
	return &types.WrongFormatError{Err: errors.Wrapf(types.ErrManifestNotFound, "%s has no %s", path, manifestFile), Holds: "an OCI image layout", Use: "oci:" + path}
}

func imageDigest(fsys fs.FS, p string) (digest.Digest, bool, error) {
	f, err := fsys.Open(path.Join(p, manifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	b, err := iolimits.ReadAtMost(f, iolimits.MaxManifestBodySize)
	if err != nil {
		return "", false, errors.Wrapf(err, "reading %s", path.Join(p, manifestFile))
	}
	d, err := manifest.Digest(b)
	if err != nil {
		return "", false, errors.Wrapf(err, "reading %s", path.Join(p, manifestFile))
	}
	return d, true, nil
}

// ManifestDigest implements types.ManifestDigester.
func (r reference) ManifestDigest(ctx context.Context, sys *types.SystemContext) (digest.Digest, error) {
	root, err := os.OpenRoot(r.path)
	if err != nil {
		err = pathformat.NotDirectory("dir", r.path, false, err)
		if errors.Is(err, fs.ErrNotExist) {
			return "", errors.Wrapf(types.ErrManifestNotFound, "reading the digest of %s: directory %s does not exist", types.ImageName(r), r.path)
		}
		return "", errors.Wrapf(err, "reading the digest of %s", types.ImageName(r))
	}
	defer root.Close()
	d, ok, err := imageDigest(root.FS(), ".")
	if err == nil && !ok {
		if err = layoutNotDir(root.FS(), r.path); err == nil {
			err = errors.Wrapf(types.ErrManifestNotFound, "%s has no %s", r.path, manifestFile)
		}
	}
	if err != nil {
		return "", errors.Wrapf(err, "reading the digest of %s", types.ImageName(r))
	}
	return d, nil
}
