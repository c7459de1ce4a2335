package layout

import (
	"context"
	"io/fs"

	dockerref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// ListImagesFS lists the images of the layout in fsys (see ListIndex); where names it in
// errors.
func ListImagesFS(fsys fs.FS, where, name string, d digest.Digest, newRef func(name string, d digest.Digest) (types.ImageReference, error)) ([]types.ListedImage, error) {
	idx, err := readLayoutShared(fsys, where)
	if err != nil {
		return nil, err
	}
	return ListIndex(idx, where, name, d, newRef)
}

// IndexNames returns every name in the layout's index.json in fsys, each once, in index
// order (types.TagLister): the images' names and the tags of related manifests (cosign's
// sha256-<hex>.sig, also those cosign save stores without a name; referrers indexes), as a
// registry lists them all.
func IndexNames(fsys fs.FS, where string) ([]string, error) {
	idx, err := readLayoutShared(fsys, where)
	if err != nil {
		return nil, err
	}
	names, seen := []string{}, map[string]bool{}
	x := entriesOf(idx)
	for i, e := range idx.Manifests {
		if n := x.name(i, e); n != "" && !seen[n] {
			names, seen[n] = append(names, n), true
		}
	}
	return names, nil
}

// OnlyDigest returns the digest of the one image a reference lists, for
// types.ManifestDigester; a reference that selects several is an error.
func OnlyDigest(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) (digest.Digest, error) {
	images, err := ref.(types.ImageLister).ListImages(ctx, sys)
	if err != nil {
		return "", err
	}
	if len(images) != 1 {
		return "", types.UsageError{Err: errors.Errorf("reading the digest of %s: it holds %d images; name one with PATH:NAME", types.ImageName(ref), len(images))}
	}
	return images[0].Digest, nil
}

// ListIndex lists the images of a layout's index.json for types.ImageLister: every entry when
// name and d are empty, else the one entry they select (as a source would). newRef returns the
// reference of an image by name or, for an unnamed entry or a name that several different
// images carry, by digest.
func ListIndex(idx *imgspecv1.Index, where, name string, d digest.Digest, newRef func(name string, d digest.Digest) (types.ImageReference, error)) ([]types.ListedImage, error) {
	if name != "" || d != "" {
		desc, err := selectImage(idx, name, d, where)
		if err != nil {
			return nil, err
		}
		ref, err := newRef(name, d)
		if err != nil {
			return nil, err
		}
		return []types.ListedImage{listed(ref, desc)}, nil
	}
	res := []types.ListedImage{}
	unique := uniqueNames(idx)
	for _, e := range idx.Manifests {
		if IsRelatedEntry(e) {
			continue // a referrers index or a digest tag travels with its image (referrers.go)
		}
		n := storedName(e)
		var ref types.ImageReference
		var err error
		if n != "" && unique[n] {
			ref, err = newRef(n, "")
		} else {
			ref, err = newRef("", e.Digest)
		}
		if err != nil {
			return nil, err
		}
		res = append(res, listed(ref, e))
	}
	return res, nil
}

func listed(ref types.ImageReference, e imgspecv1.Descriptor) types.ListedImage {
	n := storedName(e)
	return types.ListedImage{Ref: ref, Name: listedName(n), StoredName: n, Digest: e.Digest, MIMEType: e.MediaType}
}

// storedName is the name an index.json entry is listed under: its ref.name, or, when that
// is a bare tag or absent, the full reference that containerd, Docker 25+ (docker save) and
// regctl (image export) write beside it in io.containerd.image.name, with the same tag. So a
// bundle of several images from these tools keeps their repositories, which a bare tag
// ("latest", the same for every image) does not tell.
func storedName(e imgspecv1.Descriptor) string {
	n := RefName(e)
	if n != "" && !isBareTag(n) {
		return n
	}
	full := e.Annotations[containerdNameAnnotation]
	named, err := dockerref.ParseNormalizedNamed(full)
	if err != nil {
		return n
	}
	tagged, ok := named.(dockerref.NamedTagged)
	if _, digested := named.(dockerref.Digested); !ok || digested || (n != "" && tagged.Tag() != n) {
		return n
	}
	return full
}

// uniqueNames tells, for every name an entry carries (ref.name or containerd's name), whether
// it selects one image: whether the entries carrying it all have one digest, as selectImage
// decides for a name some entry carries. One pass, not one selectImage per entry, which was
// quadratic in the entries of index.json.
func uniqueNames(idx *imgspecv1.Index) map[string]bool {
	first := map[string]digest.Digest{}
	unique := map[string]bool{}
	for _, e := range idx.Manifests {
		for _, n := range []string{RefName(e), e.Annotations[containerdNameAnnotation]} {
			if n == "" {
				continue
			}
			if d, ok := first[n]; !ok {
				first[n], unique[n] = e.Digest, true
			} else if d != e.Digest {
				unique[n] = false
			}
		}
	}
	return unique
}

// listedName parses a stored name as a registry-style reference; nil for a bare tag.
func listedName(name string) dockerref.Named {
	if name == "" || isBareTag(name) {
		return nil
	}
	n, err := dockerref.ParseNormalizedNamed(name)
	if err != nil {
		return nil
	}
	return n
}
