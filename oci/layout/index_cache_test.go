package layout

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// replaceIndex writes index.json naming the entries, with modification time mtime, into a
// temporary file renamed over the old one (how imgcopy and most writers change it), or in
// place.
func (l *handLayout) replaceIndex(inPlace bool, mtime time.Time, entries ...imgspecv1.Descriptor) {
	l.t.Helper()
	b, err := json.Marshal(imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: entries})
	if err != nil {
		l.t.Fatal(err)
	}
	final := filepath.Join(l.dir, IndexFile)
	p := final
	if !inPlace {
		p = final + ".new"
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		l.t.Fatal(err)
	}
	if !inPlace {
		if err := os.Rename(p, final); err != nil {
			l.t.Fatal(err)
		}
	}
}

// TestIndexChangedBetweenOpensIsRead: index.json changed by another writer between two opens
// is read again, whether replaced by rename with the same size and time (only the inode
// tells), or rewritten in place.
func TestIndexChangedBetweenOpensIsRead(t *testing.T) {
	// Not parallel: other layouts opened between the two opens would push the first index.json
	// out of the cache, and the test could not fail.
	old := time.Now().Add(-time.Hour)
	tests := []struct {
		name           string
		inPlace        bool
		first, second  time.Time
		firstName, tag string // the second index names the image tag, the first firstName
	}{
		{"replaced by rename, same size and time", false, old, old, "aa", "bb"},
		{"rewritten in place, other size", true, old, old, "aa", "bbb"},
		{"rewritten in place, other time", true, old, old.Add(time.Millisecond), "aa", "bb"},
		{"written a moment ago, rewritten in place with the same size and time", true, time.Now(), time.Time{}, "aa", "bb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newHandLayout(t)
			a := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "amd64"))
			b := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "arm64"))
			l.replaceIndex(false, tc.first, named(a, imgspecv1.AnnotationRefName, tc.firstName))
			src, err := openSource(t, l.dir+":"+tc.firstName)
			if err != nil {
				t.Fatal(err)
			}
			if got := topDigest(t, src); got != a.Digest {
				t.Fatalf("first open read %s, want %s", got, a.Digest)
			}
			second := tc.second
			if second.IsZero() {
				second = tc.first
			}
			l.replaceIndex(tc.inPlace, second, named(b, imgspecv1.AnnotationRefName, tc.tag))
			src, err = openSource(t, l.dir+":"+tc.tag)
			if err != nil {
				t.Fatalf("opening the image the new index.json names: %v", err)
			}
			if got := topDigest(t, src); got != b.Digest {
				t.Errorf("second open read %s, want %s", got, b.Digest)
			}
			if _, err := openSource(t, l.dir+":"+tc.firstName); !errors.Is(err, types.ErrManifestNotFound) {
				t.Errorf("opening the name the old index.json had: %v, want ErrManifestNotFound", err)
			}
		})
	}
}

// TestIndexSharedUnderConcurrentWrites: opens and listings in parallel with a writer that
// keeps replacing index.json each see one version of it whole (run with -race).
func TestIndexSharedUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	l := newHandLayout(t)
	descs := []imgspecv1.Descriptor{
		l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")),
		l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "arm64")),
	}
	version := func(i int) []imgspecv1.Descriptor {
		return []imgspecv1.Descriptor{named(descs[i%2], imgspecv1.AnnotationRefName, "x"), named(descs[i%2], imgspecv1.AnnotationRefName, "v"+strconv.Itoa(i%2))}
	}
	old := time.Now().Add(-time.Hour)
	l.replaceIndex(false, old, version(0)...)
	r, err := Transport.ParseReference(l.dir + ":x")
	if err != nil {
		t.Fatal(err)
	}
	store, err := Transport.ParseReference(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 30 {
				src, err := r.NewImageSource(ctx, nil)
				if err != nil {
					t.Errorf("opening: %v", err)
					return
				}
				if got := topDigest(t, src); got != descs[0].Digest && got != descs[1].Digest {
					t.Errorf("read %s, want one of the two images", got)
				}
				src.Close()
				listed, err := store.(types.ImageLister).ListImages(ctx, nil)
				if err != nil || len(listed) != 2 || listed[0].Digest != listed[1].Digest {
					t.Errorf("listing saw %d images, %v: want the two names of one version", len(listed), err)
				}
			}
		})
	}
	for i := 1; i <= 20; i++ {
		l.replaceIndex(false, old, version(i)...)
	}
	wg.Wait()
	src, err := r.NewImageSource(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got := topDigest(t, src); got != descs[0].Digest {
		t.Errorf("after the writer: read %s, want the last version's %s", got, descs[0].Digest)
	}
}

// TestEntryIndexMatchesScan: the maps of entryIndex select the entries a scan with
// nameMatches selects, in the same order.
func TestEntryIndexMatchesScan(t *testing.T) {
	t.Parallel()
	d := func(s string) digest.Digest { return digest.FromString(s) }
	entry := func(dg digest.Digest, mediaType string, ann ...string) imgspecv1.Descriptor {
		return named(imgspecv1.Descriptor{MediaType: mediaType, Digest: dg, Size: 1}, ann...)
	}
	const ref, ctrd = imgspecv1.AnnotationRefName, containerdNameAnnotation
	m, ix := imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageIndex
	idx := &imgspecv1.Index{Manifests: []imgspecv1.Descriptor{
		entry(d("a"), m, ref, "latest"),
		entry(d("b"), m, ref, "example.com/app:latest"),
		entry(d("c"), m, ref, "latest", ctrd, "docker.io/library/app:latest"),
		entry(d("d"), m, ref, "example.com/app@sha256:"+d("x").Encoded()),
		entry(d("e"), m, ref, "host:5000/app"),
		entry(d("f"), m, ref, "host:5000/app:v1"),
		entry(d("g"), m, ref, "app@x:v1"),
		entry(d("h"), m, ref, "a/b@c/d:v1"),
		entry(d("i"), m, ref, "same", ctrd, "same"),
		entry(d("j"), ix, ref, "sha256-"+d("a").Encoded()),
		entry(d("k"), m, ref, "sha256-"+d("a").Encoded()+".sig"),
		entry(d("l"), m),
		entry(d("a"), m, ref, "again"),
		entry(d("m"), m, ref, "trailing:"),
	}}
	scan := func(name string, dg digest.Digest) (exact, suffix []imgspecv1.Descriptor) {
		for _, e := range idx.Manifests {
			switch {
			case dg != "":
				if e.Digest == dg {
					return []imgspecv1.Descriptor{e}, nil
				}
			case name != "":
				if x, s := nameMatches(e, name); x {
					exact = append(exact, e)
				} else if s {
					suffix = append(suffix, e)
				}
			case !IsRelatedEntry(e):
				exact = append(exact, e)
			}
		}
		return exact, suffix
	}
	digests := func(descs []imgspecv1.Descriptor) []digest.Digest {
		var res []digest.Digest
		for _, e := range descs {
			res = append(res, e.Digest)
		}
		return res
	}
	x := newEntryIndex(idx)
	names := []string{"", "latest", "example.com/app:latest", "docker.io/library/app:latest", "app", "v1", "5000/app",
		"host:5000/app", "same", "sha256-" + d("a").Encoded(), "again", "trailing:", "trailing", "missing", "x:v1"}
	for _, name := range names {
		for _, dg := range []digest.Digest{"", d("a"), d("l"), d("zz")} {
			wantExact, wantSuffix := scan(name, dg)
			exact, suffix := x.find(idx, name, dg)
			if !slices.Equal(digests(exact), digests(wantExact)) || (len(wantExact) == 0 && !slices.Equal(digests(suffix), digests(wantSuffix))) {
				t.Errorf("name %q digest %q: entries %v then %v, want %v then %v", name, dg, digests(exact), digests(suffix), digests(wantExact), digests(wantSuffix))
			}
		}
	}
	for _, subject := range []digest.Digest{d("a"), d("b")} {
		var want []digest.Digest
		for _, e := range idx.Manifests {
			if isReferrersIndexOf(e, subject) {
				want = append(want, e.Digest)
			}
		}
		if got := digests(x.referrersIndexes(idx, subject)); !slices.Equal(got, want) {
			t.Errorf("referrers indexes of %s: %v, want %v", subject, got, want)
		}
	}
}
