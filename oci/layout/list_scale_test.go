package layout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/types"
)

// settle sets the modification time of the layout's index.json an hour back, as for any
// layout not written a moment ago (see fileid.Stable).
func (l *handLayout) settle() {
	l.t.Helper()
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(l.dir, IndexFile), old, old); err != nil {
		l.t.Fatal(err)
	}
}

// TestListingManyImagesReadsIndexOnce: listing a layout and opening every image it lists, with
// its referrers (what list-tags, inspect and verify do), reads index.json once, not once per
// image (which was quadratic in its size), and parses it once; a layout written a moment ago
// is read at each open (its time cannot tell yet whether it changed) but still parsed once.
// Names shared by entries of other digests are still listed by digest.
func TestListingManyImagesReadsIndexOnce(t *testing.T) {
	// Not parallel: it counts the reads and parses of the whole package.
	tests := []struct {
		name      string
		settled   bool
		wantReads int64 // at most; -1: one per image
	}{
		{"settled layout", true, 1},
		{"written a moment ago", false, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newHandLayout(t)
			desc := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "amd64"))
			other := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "arm64"))
			var entries []imgspecv1.Descriptor
			for i := range 200 {
				entries = append(entries, named(desc, imgspecv1.AnnotationRefName, fmt.Sprintf("n%d", i)))
			}
			entries = append(entries, named(other, imgspecv1.AnnotationRefName, "n0"), named(other, "io.containerd.image.name", "n1"))
			l.index(entries...)
			if tc.settled {
				l.settle()
			}
			r, err := Transport.ParseReference(l.dir)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			reads, parses := indexReads.Load(), indexParses.Load()
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
				if _, err := src.(types.ReferrersLister).ListReferrers(ctx, li.Digest); err != nil {
					t.Fatalf("listing referrers of %s: %v", types.ImageName(li.Ref), err)
				}
				src.Close()
				if li.Ref.StringWithinTransport() == l.dir+"@"+li.Digest.String() {
					byDigest++
				}
			}
			wantReads := tc.wantReads
			if wantReads < 0 {
				wantReads = int64(2*len(listed) + 1)
			}
			if n := indexReads.Load() - reads; n > wantReads {
				t.Errorf("index.json read %d times for %d images, want at most %d", n, len(listed), wantReads)
			}
			if n := indexParses.Load() - parses; n > 1 {
				t.Errorf("index.json parsed %d times for %d images, want once", n, len(listed))
			}
			if byDigest != 4 { // n0 and n1 name two images each: all four entries are listed by digest
				t.Errorf("%d images listed by digest, want 4", byDigest)
			}
		})
	}
}

// TestWritingManyImagesParsesIndexOnce: writing image after image into one layout, each with
// a destination of its own that first looks for the image and its referrers (as a sync with
// --referrers does), while reading another layout between them, parses
// neither index.json again for each image: the written index is kept as parsed, next to the
// source's. Three parses per image made a sync of 2,000 images into a layout take 26 s.
func TestWritingManyImagesParsesIndexOnce(t *testing.T) {
	// Not parallel: it counts the parses of the whole package.
	srcLayout := newHandLayout(t)
	srcLayout.index(named(srcLayout.image(testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")), imgspecv1.AnnotationRefName, "src"))
	srcLayout.settle()
	srcRef := mustRef(t, srcLayout.dir, "src")
	img := testImage(t, imgspecv1.MediaTypeImageManifest, "arm64")
	dir := t.TempDir()
	ctx := context.Background()
	const images = 40
	parses := indexParses.Load()
	for i := range images {
		src, err := srcRef.NewImageSource(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		src.Close()
		ref := mustRef(t, dir, fmt.Sprintf("n%d", i))
		if has, err := ref.NewImageDestination(ctx, nil); err != nil {
			t.Fatal(err)
		} else {
			if _, err := has.(types.ManifestChecker).HasManifest(ctx, img.Digest); err != nil {
				t.Fatal(err)
			}
			if _, err := has.(types.ReferrersLister).ListReferrers(ctx, img.Digest); err != nil {
				t.Fatal(err)
			}
			has.Close()
		}
		mustWrite(t, ref, img)
	}
	if n := indexParses.Load() - parses; n > 2 {
		t.Errorf("index.json parsed %d times for %d images written, want at most twice (once per layout)", n, images)
	}
	if got := len(readIndexForTest(t, dir).Manifests); got != images {
		t.Errorf("index.json lists %d images, want %d", got, images)
	}
}
