package layout

import (
	"context"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

var (
	_ types.ImageLister      = reference{}
	_ types.ManifestDigester = reference{}
	_ types.StoreTransport   = ociTransport{}
	_ types.StoreReference   = storeReference{}
	_ types.ImageLister      = storeReference{}
)

// ListImages implements types.ImageLister: every entry of index.json for oci:PATH, in index
// order, or the one image a name or digest selects. Entries are referenced by name when the
// name selects them alone, else by digest.
func (r reference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	root, err := openLayout(r)
	if err != nil {
		return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
	}
	defer root.Close()
	images, err := ListImagesFS(root.FS(), r.path, r.name, r.digest, func(name string, d digest.Digest) (types.ImageReference, error) {
		return newReference(r.path, name, d), nil
	})
	if err != nil {
		return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
	}
	return images, nil
}

// ManifestDigest implements types.ManifestDigester from index.json.
func (r reference) ManifestDigest(ctx context.Context, sys *types.SystemContext) (digest.Digest, error) {
	return OnlyDigest(ctx, r, sys)
}

// ListTags implements types.TagLister: the names in index.json, in index order (see IndexNames).
func (r reference) ListTags(ctx context.Context, sys *types.SystemContext) ([]string, error) {
	root, err := openLayout(r)
	if err != nil {
		return nil, errors.Wrapf(err, "listing tags in %s", types.ImageName(r))
	}
	defer root.Close()
	names, err := IndexNames(root.FS(), r.path)
	if err != nil {
		return nil, errors.Wrapf(err, "listing tags in %s", types.ImageName(r))
	}
	return names, nil
}

// ParseStoreReference implements types.StoreTransport: a store is a layout directory, PATH.
func (ociTransport) ParseStoreReference(s string) (types.StoreReference, error) {
	return ParseStore(s)
}

// ParseStore parses the PATH of a layout (or oci-archive) used as a store of many images; it
// refuses PATH:NAME and PATH@DIGEST, which name one image.
func ParseStore(s string) (types.StoreReference, error) {
	if strings.ContainsAny(s, ":@") {
		if path, name, d, err := SplitReference(s); err == nil && (name != "" || d != "") {
			return nil, errors.Wrapf(types.ErrUsage, "%q names an image in %s; a store is given by its path alone", s, path)
		}
	}
	if err := checkPath(s); err != nil {
		return nil, types.UsageError{Err: err}
	}
	return storeReference{path: strings.TrimSuffix(s, ":")}, nil
}

// storeReference is an OCI layout as a store of many images.
type storeReference struct {
	path string
}

// Transport implements types.StoreReference.
func (s storeReference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.StoreReference.
func (s storeReference) StringWithinTransport() string { return s.path }

// ImageReference implements types.StoreReference: name becomes the image's ref.name.
func (s storeReference) ImageReference(name string) (types.ImageReference, error) {
	if err := CheckStoredName(name); err != nil {
		return nil, err
	}
	return newReference(s.path, name, ""), nil
}

// CheckStoredName checks a name given to StoreReference.ImageReference of a layout or an
// oci-archive; the error wraps types.ErrUsage.
func CheckStoredName(name string) error {
	if name == "" {
		return errors.Wrap(types.ErrUsage, "an image in a store needs a name")
	}
	if err := ValidateRefName(name); err != nil {
		return types.UsageError{Err: err}
	}
	return nil
}

// ListImages implements types.ImageLister: every image in the layout.
func (s storeReference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	return newReference(s.path, "", "").ListImages(ctx, sys)
}
