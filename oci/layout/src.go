package layout

import (
	"context"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/types"
)

var _ types.ImageSource = (*source)(nil)

// source reads one image of a layout through an fs.FS: an os.Root for a directory, so that
// no symlink leads outside it, or a tar index for oci-archive.
type source struct {
	ref    types.ImageReference
	fsys   fs.FS
	where  string
	closer io.Closer
	desc   imgspecv1.Descriptor // the chosen index.json entry
	top    []byte               // its manifest, verified against desc

	// unnamed maps subjects to the unnamed index.json entries that refer to them, found by
	// one scan when referrers are first listed (referrers.go).
	unnamedOnce sync.Once
	unnamed     map[digest.Digest][]imgspecv1.Descriptor
	unnamedErr  error

	// instances maps the manifest digests reachable from desc to their descriptors, so that
	// copying an index of N instances reads each manifest once rather than walking the tree
	// for every instance (quadratic: minutes for a 5,000-entry index). It starts with the top
	// index's own entries; the first miss adds everything one walk finds (walked).
	instMu    sync.Mutex
	instances map[digest.Digest]imgspecv1.Descriptor
	walked    bool
}

func newImageSource(r reference) (types.ImageSource, error) {
	root, err := os.OpenRoot(r.path)
	if err != nil {
		err = pathformat.NotDirectory("oci", r.path, false, err)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "opening %s: layout directory %s does not exist", types.ImageName(r), r.path)
		}
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
	}
	src, err := NewImageSourceFS(r, root.FS(), r.path, r.name, r.digest, root)
	if err != nil {
		root.Close()
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
	}
	return src, nil
}

// NewImageSourceFS opens an image of the OCI layout in fsys: the one named name (a bare tag
// or a full reference), the one whose manifest digest is d, or, when both are empty, the
// layout's only image. ref is what the source's Reference returns, where names the layout in
// errors, and closer (may be nil) is closed by the source's Close; on error the caller keeps
// ownership of closer.
func NewImageSourceFS(ref types.ImageReference, fsys fs.FS, where, name string, d digest.Digest, closer io.Closer) (types.ImageSource, error) {
	idx, err := readLayoutShared(fsys, where)
	if err != nil {
		return nil, err
	}
	desc, err := selectImage(idx, name, d, where)
	if err != nil {
		return nil, err
	}
	top, err := readManifestBlob(fsys, desc, where)
	if err != nil {
		return nil, err
	}
	return &source{ref: ref, fsys: fsys, where: where, closer: closer, desc: desc, top: top}, nil
}

// RefName returns the image name of an index.json entry ("" when it has none).
func RefName(desc imgspecv1.Descriptor) string {
	return desc.Annotations[imgspecv1.AnnotationRefName]
}

// isBareTag reports whether name is a tag rather than a reference with a repository.
func isBareTag(name string) bool {
	return !strings.ContainsAny(name, "/:@")
}

// nameMatches reports whether an index.json entry carries name: exactly (ref.name or
// containerd's full name), or, for a bare tag, as the tag of a full reference.
func nameMatches(desc imgspecv1.Descriptor, name string) (exact, suffix bool) {
	ann := RefName(desc)
	if ann == name || desc.Annotations[containerdNameAnnotation] == name {
		return true, false
	}
	return false, isBareTag(name) && strings.HasSuffix(ann, ":"+name) && !strings.Contains(ann[strings.LastIndexByte(ann, '/')+1:len(ann)-len(name)-1], "@")
}

// selectImage picks the index.json entry for a name, a digest or, with neither, the only one.
func selectImage(idx *imgspecv1.Index, name string, d digest.Digest, where string) (imgspecv1.Descriptor, error) {
	exact, suffix := entriesOf(idx).find(idx, name, d)
	candidates := exact
	if len(candidates) == 0 {
		candidates = suffix
	}
	switch {
	case len(candidates) == 0 && d != "":
		return imgspecv1.Descriptor{}, errors.Wrapf(types.ErrManifestNotFound, "no image with digest %s in %s (available: %s)", d, where, listNames(idx.Manifests))
	case len(candidates) == 0 && name != "":
		return imgspecv1.Descriptor{}, errors.Wrapf(types.ErrManifestNotFound, "no image named %q in %s (available: %s)", name, where, listNames(idx.Manifests))
	case len(candidates) == 0:
		return imgspecv1.Descriptor{}, errors.Wrapf(types.ErrManifestNotFound, "%s holds no image", where)
	// A reference that selects several images is one the user must change (exit code 2).
	case !sameDigest(candidates) && name != "":
		return imgspecv1.Descriptor{}, types.UsageError{Err: errors.Errorf("%d different images match %q in %s: %s", len(candidates), name, where, listNames(candidates))}
	case !sameDigest(candidates):
		return imgspecv1.Descriptor{}, types.UsageError{Err: errors.Errorf("%s holds %d images, choose one with PATH:NAME or PATH@DIGEST: %s", where, len(candidates), listNames(candidates))}
	}
	return candidates[0], nil
}

func sameDigest(descs []imgspecv1.Descriptor) bool {
	for _, desc := range descs {
		if desc.Digest != descs[0].Digest {
			return false
		}
	}
	return true
}

// listNames renders the names of entries (the digest for unnamed ones), sorted.
func listNames(descs []imgspecv1.Descriptor) string {
	if len(descs) == 0 {
		return "none"
	}
	var names []string
	for _, desc := range descs {
		if n := RefName(desc); n != "" {
			names = append(names, n)
		} else {
			names = append(names, "@"+desc.Digest.String())
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Reference implements types.ImageSource.
func (s *source) Reference() types.ImageReference { return s.ref }

// Properties implements types.ImageSource.
func (s *source) Properties() types.SourceProperties {
	return types.SourceProperties{ConcurrentBlobs: true}
}

// GetManifest implements types.ImageSource. Instances are looked up through the image's
// index and nested indexes, and every manifest read is checked against its descriptor.
func (s *source) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	if instance == nil || *instance == s.desc.Digest {
		return s.top, mimeTypeOf(s.desc, s.top), nil
	}
	found, err := s.lookupInstance(*instance)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading manifest %s from %s", *instance, types.ImageName(s.ref))
	}
	b, err := readManifestBlob(s.fsys, found, s.where)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading manifest %s from %s", *instance, types.ImageName(s.ref))
	}
	return b, mimeTypeOf(found, b), nil
}

// lookupInstance returns the descriptor of manifest d among those reachable from the image,
// wrapping types.ErrManifestNotFound when it is not one of them.
func (s *source) lookupInstance(d digest.Digest) (imgspecv1.Descriptor, error) {
	s.instMu.Lock()
	defer s.instMu.Unlock()
	add := func(desc imgspecv1.Descriptor) error {
		if _, ok := s.instances[desc.Digest]; !ok && (desc.MediaType == "" || isManifestType(desc.MediaType)) {
			s.instances[desc.Digest] = desc
		}
		return nil
	}
	if s.instances == nil {
		s.instances = map[digest.Digest]imgspecv1.Descriptor{}
		if manifests, _, err := children(s.top, s.where); err == nil {
			for _, m := range manifests {
				_ = add(m)
			}
		}
	}
	if desc, ok := s.instances[d]; ok {
		return desc, nil
	}
	if !s.walked {
		if err := walk(s.fsys, s.desc, s.where, nil, add); err != nil {
			return imgspecv1.Descriptor{}, err
		}
		s.walked = true
		if desc, ok := s.instances[d]; ok {
			return desc, nil
		}
	}
	return imgspecv1.Descriptor{}, errors.Wrapf(types.ErrManifestNotFound, "manifest %s is not part of the image", d)
}

// GetBlob implements types.ImageSource.
func (s *source) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	p, err := BlobPath(info.Digest)
	if err != nil {
		return nil, -1, errors.Wrapf(err, "fetching blob from %s", types.ImageName(s.ref))
	}
	f, err := s.fsys.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, -1, errors.Wrapf(types.ErrBlobNotFound, "fetching blob %s from %s", info.Digest, types.ImageName(s.ref))
		}
		return nil, -1, errors.Wrapf(err, "fetching blob %s from %s (%s)", info.Digest, types.ImageName(s.ref), p)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.Wrapf(ErrInvalidLayout, "%s in %s is not a regular file", p, s.where)
	}
	if err != nil {
		f.Close()
		return nil, -1, errors.Wrapf(err, "fetching blob %s from %s", info.Digest, types.ImageName(s.ref))
	}
	return f, fi.Size(), nil
}

// Close implements types.ImageSource.
func (s *source) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}
