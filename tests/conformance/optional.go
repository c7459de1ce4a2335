package conformance

import (
	"context"
	"io/fs"
	"slices"
	"testing"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// This file tests the optional interfaces of types (store.go, sync.go, types.go): each test runs
// when the transport under test implements the interface and is skipped otherwise.

// testHasManifest checks types.ManifestChecker: false at an empty location and for a digest
// that was never written, true for a committed image.
func (s *suite) testHasManifest(t *testing.T) {
	ctx := context.Background()
	img := s.image(t, 0)
	ref := s.h.NewReference(t)
	dest := s.openDest(t, ref)
	if _, ok := dest.(types.ManifestChecker); !ok {
		closeDest(t, dest)
		t.Skip("destination does not implement types.ManifestChecker")
	}
	if has, err := dest.(types.ManifestChecker).HasManifest(ctx, img.Digest); has {
		t.Errorf("HasManifest(%s) at an empty location: true (error %v)", img.Digest, err)
	}
	closeDest(t, dest)
	s.writeImage(t, ref, img, blobWrite{})
	dest = s.openDest(t, ref)
	defer closeDest(t, dest)
	mc := dest.(types.ManifestChecker)
	if !s.h.RewritesManifest {
		if has, err := mc.HasManifest(ctx, img.Digest); err != nil || !has {
			t.Errorf("HasManifest(%s) of a committed image: %v, error %v; want true", img.Digest, has, err)
		}
	}
	other := digest.FromString("a manifest that was never written")
	if has, err := mc.HasManifest(ctx, other); has {
		t.Errorf("HasManifest(%s) of a manifest that was never written: true (error %v)", other, err)
	}
}

// testManifestDigest checks types.ManifestDigester: ErrManifestNotFound for an empty
// location, the digest of the stored manifest for a committed image.
func (s *suite) testManifestDigest(t *testing.T) {
	ctx := context.Background()
	ref, md := optionalRef[types.ManifestDigester](t, s, "types.ManifestDigester")
	if d, err := md.ManifestDigest(ctx, s.h.Sys); !errors.Is(err, types.ErrManifestNotFound) && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ManifestDigest at an empty location: %q, %v; want ErrManifestNotFound or fs.ErrNotExist", d, err)
	}
	img := s.image(t, 0)
	s.writeImage(t, ref, img, blobWrite{})
	want := img.Digest
	if s.h.RewritesManifest {
		want = s.storedDigest(t, ref)
	}
	if d, err := md.ManifestDigest(ctx, s.h.Sys); err != nil || d != want {
		t.Errorf("ManifestDigest of a committed image: %q, %v; want %s", d, err, want)
	}
}

// optionalRef returns a fresh reference, also as the optional interface T (named what); it
// skips the test when the reference does not implement T.
func optionalRef[T any](t *testing.T, s *suite, what string) (types.ImageReference, T) {
	ref := s.h.NewReference(t)
	impl, ok := ref.(T)
	if !ok {
		t.Skip("reference does not implement " + what)
	}
	return ref, impl
}

// storedDigest returns the digest of the top-level manifest ref serves.
func (s *suite) storedDigest(t *testing.T, ref types.ImageReference) digest.Digest {
	t.Helper()
	m, _, err := s.openSource(t, ref).GetManifest(context.Background(), nil)
	if err != nil {
		t.Fatalf("GetManifest: %v", err)
	}
	return digest.FromBytes(m)
}

// testListImages checks types.ImageLister: a location holding one committed image lists
// exactly it, with a reference that opens it.
func (s *suite) testListImages(t *testing.T) {
	ref, lister := optionalRef[types.ImageLister](t, s, "types.ImageLister")
	img := s.image(t, 0)
	s.writeImage(t, ref, img, blobWrite{})
	listed, err := lister.ListImages(context.Background(), s.h.Sys)
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	if len(listed) != 1 || listed[0].Ref == nil {
		t.Fatalf("ListImages of a location holding one image: %+v; want one image with a Ref", listed)
	}
	l := listed[0]
	if l.Digest != "" && !s.h.RewritesManifest && l.Digest != img.Digest {
		t.Errorf("ListImages: digest %s, want %s", l.Digest, img.Digest)
	}
	s.checkManifest(t, s.openSource(t, l.Ref), nil, img.Manifest, img.MIMEType)
}

// testListTags checks types.TagLister: listing succeeds once an image is committed, names
// appear once each, and a reference with a tag finds it.
func (s *suite) testListTags(t *testing.T) {
	ref, tl := optionalRef[types.TagLister](t, s, "types.TagLister")
	s.writeImage(t, ref, s.image(t, 0), blobWrite{})
	tags, err := tl.ListTags(context.Background(), s.h.Sys)
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	for i, tag := range tags {
		if tag == "" || slices.Contains(tags[:i], tag) {
			t.Errorf("ListTags returned an empty or repeated name %q: %q", tag, tags)
		}
	}
	if named, ok := ref.DockerReference().(reference.NamedTagged); ok {
		if !slices.Contains(tags, named.Tag()) && !slices.Contains(tags, reference.FamiliarString(named)) && !slices.Contains(tags, named.String()) {
			t.Errorf("ListTags after writing %s: %q does not name it", types.ImageName(ref), tags)
		}
	}
}

// testDeleteImage checks types.ImageDeleter: a deleted image is gone, and the location can
// be written again.
func (s *suite) testDeleteImage(t *testing.T) {
	ref, del := optionalRef[types.ImageDeleter](t, s, "types.ImageDeleter")
	img := s.image(t, 0)
	s.writeImage(t, ref, img, blobWrite{})
	if err := del.DeleteImage(context.Background(), s.h.Sys); err != nil {
		if errors.Is(err, types.ErrUsage) {
			t.Skipf("this reference cannot name a single image to delete: %v", err)
		}
		t.Fatalf("DeleteImage: %v", err)
	}
	s.assertNoImage(t, ref)
	s.writeImage(t, ref, img, blobWrite{})
	s.checkImage(t, ref, img)
}

// testDeleteTag checks types.TagDeleter: the deleted name no longer opens, deleting it again
// is ErrManifestNotFound, and it can be written again; with Harness.OtherName, the image
// stays readable under its other name.
func (s *suite) testDeleteTag(t *testing.T) {
	ctx := context.Background()
	ref, del := optionalRef[types.TagDeleter](t, s, "types.TagDeleter")
	img := s.image(t, 0)
	s.writeImage(t, ref, img, blobWrite{})
	var other types.ImageReference
	if s.h.OtherName != nil {
		other = s.h.OtherName(t, ref)
		s.writeImage(t, other, img, blobWrite{})
	}
	if err := del.DeleteTag(ctx, s.h.Sys); err != nil {
		if errors.Is(err, types.ErrUsage) {
			t.Skipf("this reference names no tag alone: %v", err)
		}
		t.Fatalf("DeleteTag: %v", err)
	}
	s.assertNoImage(t, ref)
	if other != nil {
		s.checkImage(t, other, img)
	}
	if err := del.DeleteTag(ctx, s.h.Sys); !errors.Is(err, types.ErrManifestNotFound) && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DeleteTag of a name that is gone: %v; want ErrManifestNotFound or fs.ErrNotExist", err)
	}
	s.writeImage(t, ref, img, blobWrite{})
	s.checkImage(t, ref, img)
}
