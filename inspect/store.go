package inspect

import (
	"context"
	"encoding/json"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// StoredImage is one image of a store of many (an OCI layout, an archive, a dir store) as
// `imgcopy inspect` and `imgcopy list-tags` show it.
type StoredImage struct {
	// Name is the name the store gives the image (ref.name, RepoTag, subdirectory), "" for none.
	Name string `json:",omitempty"`
	// Reference names the image for other imgcopy commands, e.g. "oci-archive:b.tar:v1".
	Reference string
	Digest    digest.Digest
	MIMEType  string
	// Platforms are the platforms of the image ("linux/amd64"), one per runnable instance of an
	// index (attestations left out).
	Platforms []string
}

// StoreOutput is what `imgcopy inspect` prints for a store that holds several images.
type StoreOutput struct {
	Store  string
	Images []StoredImage
}

// InspectStore describes every image of a store when ref stands for a store holding several
// images (or none): a reference that can list images and carries no registry-style name
// (oci:PATH, oci-archive:PATH, docker-archive:PATH, dir:STORE). ok is false when ref names one
// image, which Inspect describes; a registry reference always does (the tag defaults to
// latest), as in skopeo.
func InspectStore(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) (out *StoreOutput, ok bool, err error) {
	if err := types.RequireReferences("inspecting a store", ref); err != nil {
		return nil, false, err
	}
	lister, isLister := ref.(types.ImageLister)
	if !isLister || ref.DockerReference() != nil {
		return nil, false, nil
	}
	listed, err := lister.ListImages(ctx, sys)
	if err != nil {
		return nil, false, errors.Wrapf(err, "listing images of %s", types.ImageName(ref))
	}
	if len(listed) <= 1 { // one image, or none: inspect it as an image, which fails as it should
		return nil, false, nil
	}
	out = &StoreOutput{Store: types.ImageName(ref), Images: []StoredImage{}}
	if out.Images, err = describeAll(ctx, listed, sys); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// ListStore lists the images of a store with their digests and platforms (read from each
// image's index or config).
func ListStore(ctx context.Context, lister types.ImageLister, sys *types.SystemContext) ([]StoredImage, error) {
	if lister == nil {
		return nil, types.UsageError{Err: errors.New("listing a store needs a store, got nil")}
	}
	listed, err := lister.ListImages(ctx, sys)
	if err != nil {
		return nil, err
	}
	return describeAll(ctx, listed, sys)
}

func describeAll(ctx context.Context, listed []types.ListedImage, sys *types.SystemContext) ([]StoredImage, error) {
	res := make([]StoredImage, 0, len(listed))
	for _, l := range listed {
		if err := ctx.Err(); err != nil { // local stores do not look at ctx: Ctrl-C stops here
			return nil, err
		}
		img, err := describe(ctx, l, sys)
		if err != nil {
			return nil, err
		}
		res = append(res, img)
	}
	return res, nil
}

// describe reads the manifest (and, for a single image, the config) of a listed image.
func describe(ctx context.Context, l types.ListedImage, sys *types.SystemContext) (img StoredImage, err error) {
	img = StoredImage{Name: l.StoredName, Reference: types.ImageName(l.Ref), Digest: l.Digest, MIMEType: l.MIMEType, Platforms: []string{}}
	src, err := l.Ref.NewImageSource(ctx, sys)
	if err != nil {
		return img, errors.Wrapf(err, "opening %s", img.Reference)
	}
	defer func() { err = types.AddCloseError(err, src.Close(), "closing "+types.ImageName(src.Reference())) }()
	b, mimeType, err := src.GetManifest(ctx, nil)
	if err != nil {
		return img, errors.Wrapf(err, "reading manifest of %s", img.Reference)
	}
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(b)
	}
	img.MIMEType = mimeType
	if img.Digest, err = manifest.Digest(b); err != nil {
		return img, errors.Wrapf(err, "computing manifest digest of %s", img.Reference)
	}
	if manifest.IsIndexType(mimeType) {
		idx, err := manifest.IndexFromBlob(b, mimeType)
		if err != nil {
			return img, errors.Wrapf(err, "parsing index of %s", img.Reference)
		}
		for _, inst := range idx.Instances() {
			if manifest.Runnable(inst) {
				img.Platforms = append(img.Platforms, manifest.FormatPlatform(*inst.Platform))
			}
		}
		return img, nil
	}
	m, err := manifest.FromBlob(b, mimeType)
	if err != nil {
		return img, errors.Wrapf(err, "parsing manifest of %s", img.Reference)
	}
	config, err := readConfig(ctx, src, m)
	if err != nil || len(config) == 0 {
		return img, err
	}
	var c imageConfig
	if err := json.Unmarshal(config, &c); err != nil {
		return img, errors.Wrapf(err, "parsing config of %s", img.Reference)
	}
	if c.OS != "" || c.Architecture != "" {
		img.Platforms = append(img.Platforms, manifest.FormatPlatform(types.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}))
	}
	return img, nil
}
