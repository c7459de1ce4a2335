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
