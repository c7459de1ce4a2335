package layout

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// artifactOf returns an artifact manifest referring to subject (its only blob is the empty
// config, which l must hold).
func artifactOf(t *testing.T, subject imgspecv1.Descriptor, artifactType string) []byte {
	t.Helper()
	b, err := json.Marshal(imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: imgspecv1.DescriptorEmptyJSON, Layers: []imgspecv1.Descriptor{}, Subject: &subject})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestListReferrersForms reads the referrers other tools leave in a layout: a tag-schema
// index named sha256-<hex> (regctl), an index annotated with its subject (the image-spec
// draft) and an artifact listed without a name (oras). The image is still the layout's only
// image.
func TestListReferrersForms(t *testing.T) {
	t.Parallel()
	l := newHandLayout(t)
	img := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "amd64"))
	l.blob(imgspecv1.MediaTypeEmptyJSON, []byte("{}"))
	var want []string
	refs := map[string]imgspecv1.Descriptor{}
	for _, typ := range []string{"a/regctl", "a/draft", "a/oras"} {
		refs[typ] = l.blob(imgspecv1.MediaTypeImageManifest, artifactOf(t, img, typ))
		want = append(want, refs[typ].Digest.String())
	}
	slices.Sort(want)
	index := func(d imgspecv1.Descriptor) imgspecv1.Descriptor {
		b, _, err := manifest.AddReferrers(nil, []imgspecv1.Descriptor{d})
		if err != nil {
			t.Fatal(err)
		}
		return l.blob(imgspecv1.MediaTypeImageIndex, b)
	}
	l.index(img,
		named(index(refs["a/regctl"]), imgspecv1.AnnotationRefName, manifest.FallbackTag(img.Digest)),
		named(index(refs["a/draft"]), AnnotationReferrerSubject, img.Digest.String()),
		refs["a/oras"])
	src, err := openSource(t, l.dir+"@"+img.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	descs, err := src.(types.ReferrersLister).ListReferrers(context.Background(), img.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range descs {
		got = append(got, d.Digest.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("referrers %v, want %v", got, want)
	}
	b, _, err := src.(types.RelatedSource).GetRelatedManifest(context.Background(), refs["a/oras"].Digest.String())
	if err != nil || digest.FromBytes(b) != refs["a/oras"].Digest {
		t.Errorf("GetRelatedManifest: %v", err)
	}
	// Listing the layout's images leaves the referrers indexes out, as choosing its only image
	// does; its tags include the fallback tag, as a registry's do.
	listed, err := newReference(l.dir, "", "").ListImages(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var images []digest.Digest
	for _, li := range listed {
		images = append(images, li.Digest)
	}
	if want := []digest.Digest{img.Digest, refs["a/oras"].Digest}; !slices.Equal(images, want) {
		t.Errorf("ListImages = %v, want %v", images, want)
	}
	tags, err := newReference(l.dir, "", "").ListTags(context.Background(), nil)
	if err != nil || !slices.Contains(tags, manifest.FallbackTag(img.Digest)) {
		t.Errorf("ListTags = %v, %v; want the fallback tag %s among them", tags, err, manifest.FallbackTag(img.Digest))
	}
}

// TestConcurrentReferrerWriters commits two referrers of one image from two destinations at
// once: the layout lock serializes the index updates, so both are listed.
func TestConcurrentReferrerWriters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/layout"
	img := testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")
	subject := imgspecv1.Descriptor{MediaType: img.MIMEType, Digest: digest.FromBytes(img.Manifest), Size: int64(len(img.Manifest))}
	artifactTypes := []string{"a/one", "a/two", "a/three"}
	var wg sync.WaitGroup
	errs := make([]error, len(artifactTypes))
	for i, typ := range artifactTypes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = writeWithReferrer(context.Background(), mustRef(t, dir, "v1"), img, artifactOf(t, subject, typ))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	idx := readIndexForTest(t, dir)
	descs, err := ListReferrersFS(os.DirFS(dir), idx, subject.Digest, dir)
	if err != nil || len(descs) != len(artifactTypes) {
		t.Errorf("referrers %+v, %v; want %d", descs, err, len(artifactTypes))
	}
	if len(idx.Manifests) != 2 {
		t.Errorf("index.json has %d entries, want the image and one referrers index", len(idx.Manifests))
	}
}

// writeWithReferrer writes img and, in the same session, the artifact art.
func writeWithReferrer(ctx context.Context, ref types.ImageReference, img conformance.Image, art []byte) error {
	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		return err
	}
	defer dest.Close()
	blobs := append(img.Blobs(), conformance.Blob{MediaType: imgspecv1.MediaTypeEmptyJSON, Data: []byte("{}"), Digest: digest.FromBytes([]byte("{}"))})
	for _, b := range blobs {
		info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
		if _, err := dest.PutBlob(ctx, bytes.NewReader(b.Data), info, types.PutBlobOptions{}); err != nil {
			return err
		}
	}
	if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, nil); err != nil {
		return err
	}
	if err := dest.(types.RelatedDestination).PutRelatedManifest(ctx, art, imgspecv1.MediaTypeImageManifest, types.PutRelatedOptions{}); err != nil {
		return err
	}
	return dest.Commit(ctx, types.CommitOptions{})
}
