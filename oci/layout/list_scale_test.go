package layout

import (
	"context"
	"fmt"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/types"
)

// TestListingManyImagesParsesIndexOnce: listing a layout and opening every image it lists (what
// list-tags, inspect and verify do) parses index.json once, not once per image, which was
// quadratic in its entries; names shared by entries of other digests are still listed by
// digest.
func TestListingManyImagesParsesIndexOnce(t *testing.T) {
	// Not parallel: it counts the parses of the whole package.
	l := newHandLayout(t)
	desc := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "amd64"))
	other := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "arm64"))
	var entries []imgspecv1.Descriptor
	for i := range 200 {
		entries = append(entries, named(desc, imgspecv1.AnnotationRefName, fmt.Sprintf("n%d", i)))
	}
	entries = append(entries, named(other, imgspecv1.AnnotationRefName, "n0"), named(other, "io.containerd.image.name", "n1"))
	l.index(entries...)
	r, err := Transport.ParseReference(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := indexParses.Load()
	listed, err := r.(types.ImageLister).ListImages(ctx, nil)
	if err != nil || len(listed) != len(entries) {
		t.Fatalf("ListImages = %d images, %v; want %d", len(listed), err, len(entries))
	}
	byDigest := 0
	for _, li := range listed {
		src, err := li.Ref.NewImageSource(ctx, nil)
		if err != nil {
			t.Fatalf("opening %s: %v", types.ImageName(li.Ref), err)
		}
		src.Close()
		if li.Ref.StringWithinTransport() == l.dir+"@"+li.Digest.String() {
			byDigest++
		}
	}
	if n := indexParses.Load() - before; n > 2 {
		t.Errorf("index.json parsed %d times for %d images, want at most 2", n, len(listed))
	}
	if byDigest != 4 { // n0 and n1 name two images each: all four entries are listed by digest
		t.Errorf("%d images listed by digest, want 4", byDigest)
	}
}
