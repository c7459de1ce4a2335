package tarfile

import (
	"context"

	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// manyImagesMembers lays out n one-layer images as Docker 25+ does, in one archive: image i is
// tagged example.com/img-NNNN:v1, and index.json names each manifest. It returns the members
// and the digest of each image's manifest.
func manyImagesMembers(t testing.TB, n int) ([]member, []digest.Digest) {
	t.Helper()
	blob := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	idx := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex}
	var ms []member
	var items []ManifestItem
	var digests []digest.Digest
	for i := range n {
		img := newTestImage(t, 1, fmt.Sprintf("arch%d", i))
		m := imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
			Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: img.configDigest(), Size: int64(len(img.config))},
			Layers: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageLayer, Digest: img.diffIDs[0], Size: int64(len(img.layers[0]))}}}
		mb := mustJSON(t, m)
		tag := fmt.Sprintf("example.com/img-%04d:v1", i)
		ms = append(ms, member{name: blob(img.configDigest()), data: img.config}, member{name: blob(digest.FromBytes(mb)), data: mb})
		if i == 0 { // every image has the same layer
			ms = append(ms, member{name: blob(img.diffIDs[0]), data: img.layers[0]})
		}
		items = append(items, ManifestItem{Config: blob(img.configDigest()), RepoTags: []string{tag}, Layers: []string{blob(img.diffIDs[0])}})
		idx.Manifests = append(idx.Manifests, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromBytes(mb),
			Size: int64(len(mb)), Annotations: map[string]string{annotationContainerName: tag, annotationRefName: "v1"}})
		digests = append(digests, digest.FromBytes(mb))
	}
	return append(ms,
		member{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		member{name: "index.json", data: mustJSON(t, idx)},
		member{name: "manifest.json", data: mustJSON(t, items)}), digests
}

// writeOld writes an archive with the modification time mtime (old enough, an archive has an
// ID for keeping what was read from it), into a new file renamed over path or in place.
func writeOld(t *testing.T, path string, data []byte, mtime time.Time, inPlace bool) {
	t.Helper()
	p := path
	if !inPlace {
		p = path + ".new"
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if !inPlace {
		if err := os.Rename(p, path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListingReadsMetadataOnce: listing the images of an archive and then opening each (as
// list-tags, inspect and verify do) reads manifest.json and index.json once, not once per
// image, and each image still gets its own manifest from index.json.
//
// Not parallel, here and below: the counters and the kept members are shared by the package.
func TestListingReadsMetadataOnce(t *testing.T) {
	const n = 100
	ms, want := manyImagesMembers(t, n)
	path := filepath.Join(t.TempDir(), "many.tar")
	writeOld(t, path, buildTar(t, ms), time.Now().Add(-time.Hour), false)
	manifests, indexes := manifestReads.Load(), indexReads.Load()

	r, err := NewReader(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for pos := range r.Items() {
		sum := r.Summarize(pos)
		if sum.Digest != want[pos] || len(sum.RepoTags) != 1 || NameTag(sum.RepoTags[0]) != fmt.Sprintf("example.com/img-%04d:v1", pos) {
			t.Fatalf("image @%d summarized as %+v, want digest %s", pos, sum, want[pos])
		}
	}
	var wg sync.WaitGroup
	for pos := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, err := openSource(t, path, nil, fmt.Sprintf("example.com/img-%04d:v1", pos), -1)
			if err != nil {
				t.Error(err)
				return
			}
			if s := src.(*source); s.pos != pos || digest.FromBytes(s.top) != want[pos] {
				t.Errorf("image %d opened as @%d with manifest %s, want %s", pos, s.pos, digest.FromBytes(s.top), want[pos])
			}
		}()
	}
	wg.Wait()
	if got := manifestReads.Load() - manifests; got != 1 {
		t.Errorf("manifest.json read %d times, want 1", got)
	}
	if got := indexReads.Load() - indexes; got != 1 {
		t.Errorf("index.json read %d times, want 1", got)
	}
}

// TestFreshArchiveParsedOnce: an archive modified a moment ago has no ID, so its manifest.json
// is read at each open; it is parsed again only when its bytes changed.
func TestFreshArchiveParsedOnce(t *testing.T) {
	ms, _ := manyImagesMembers(t, 3)
	path := writeArchive(t, buildTar(t, ms))
	reads, parses := manifestReads.Load(), manifestParses.Load()
	for range 3 {
		if _, err := openSource(t, path, nil, "example.com/img-0001:v1", -1); err != nil {
			t.Fatal(err)
		}
	}
	if got := manifestReads.Load() - reads; got != 3 {
		t.Errorf("manifest.json read %d times, want 3", got)
	}
	if got := manifestParses.Load() - parses; got != 1 {
		t.Errorf("manifest.json parsed %d times, want 1", got)
	}
}

// TestChangedArchiveIsReadAgain: an archive changed between two opens is read again, whether
// replaced by rename with the same size and time (only the inode tells) or rewritten in place.
func TestChangedArchiveIsReadAgain(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	archive := func(tag string) []byte {
		return buildTar(t, classicMembers(t, newTestImage(t, 1, "amd64"), tag))
	}
	for _, inPlace := range []bool{false, true} {
		t.Run(fmt.Sprintf("inPlace=%v", inPlace), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.tar")
			writeOld(t, path, archive("example.com/aaaa:v1"), old, false)
			if _, err := openSource(t, path, nil, "example.com/aaaa:v1", -1); err != nil {
				t.Fatal(err)
			}
			writeOld(t, path, archive("example.com/bbbb:v1"), old, inPlace)
			if _, err := openSource(t, path, nil, "example.com/bbbb:v1", -1); err != nil {
				t.Fatalf("the new tag: %v", err)
			}
			if _, err := openSource(t, path, nil, "example.com/aaaa:v1", -1); !errors.Is(err, types.ErrManifestNotFound) {
				t.Fatalf("the old tag: got %v, want ErrManifestNotFound", err)
			}
		})
	}
}

// TestChooseByName: the name lookup table answers as the scan of every RepoTag did.
func TestChooseByName(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 1, "amd64")
	item := func(tags ...string) ManifestItem {
		return ManifestItem{Config: img.configDigest().Encoded() + ".json", RepoTags: tags, Layers: []string{img.diffIDs[0].Encoded() + ".tar"}}
	}
	items := []ManifestItem{
		item("busybox:latest", "docker.io/library/busybox:latest"), // one image, one name twice
		item("example.com/dup:v1"),
		item(),
		item("example.com/dup:v1", "example.com/only:v2"),
		item("example.com/dup:v1"),
	}
	path := writeArchive(t, buildTar(t, []member{
		{name: img.configDigest().Encoded() + ".json", data: img.config},
		{name: img.diffIDs[0].Encoded() + ".tar", data: img.layers[0]},
		{name: "manifest.json", data: mustJSON(t, items)},
	}))
	r, err := NewReader(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		name    string
		want    int
		wantErr error
		msg     string
	}{
		{name: "docker.io/library/busybox:latest", want: 0},
		{name: "example.com/only:v2", want: 3},
		{name: "example.com/dup:v1", wantErr: ErrInvalidArchive, msg: "tag example.com/dup:v1 names both image @1 and @3: invalid docker archive"},
		{name: "example.com/none:v1", wantErr: types.ErrManifestNotFound},
	}
	for _, tc := range tests {
		pos, err := r.Choose(tagged(t, tc.name), -1)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) || (tc.msg != "" && err.Error() != tc.msg) {
				t.Errorf("%s: got %d, %v, want %v", tc.name, pos, err, tc.wantErr)
			}
			continue
		}
		if err != nil || pos != tc.want {
			t.Errorf("%s: got %d, %v, want @%d", tc.name, pos, err, tc.want)
		}
	}
}
