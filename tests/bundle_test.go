package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"golang.org/x/sync/errgroup"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// bundleImage is a test image written into a bundle under name.
type bundleImage struct {
	name string
	img  conformance.Image
	src  types.ImageReference
}

// bundleImages builds three images that share their base layers (layer n is the same in
// every conformance image), each in an OCI layout of its own.
func bundleImages(t *testing.T) []bundleImage {
	t.Helper()
	var res []bundleImage
	for i, o := range []conformance.ImageOptions{
		{MIMEType: imgspecv1.MediaTypeImageManifest, Architecture: "amd64", Layers: 2},
		{MIMEType: manifest.DockerV2Schema2MediaType, Architecture: "arm64", Layers: 2},
		{MIMEType: imgspecv1.MediaTypeImageManifest, Architecture: "s390x", Layers: 3},
	} {
		img, err := conformance.BuildImage(o)
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, bundleImage{name: fmt.Sprintf("team/app%d:v%d", i, i), img: img, src: warmSource(t, []conformance.Image{img}, img.Manifest, img.MIMEType)})
	}
	return res
}

// uniqueBlobBytes is the size of every distinct blob (configs, layers, manifests) of imgs.
func uniqueBlobBytes(imgs []bundleImage) (int64, int) {
	seen := map[digest.Digest]int64{}
	for _, bi := range imgs {
		for _, b := range bi.img.Blobs() {
			seen[b.Digest] = int64(len(b.Data))
		}
		seen[bi.img.Digest] = int64(len(bi.img.Manifest))
	}
	var n int64
	for _, size := range seen {
		n += size
	}
	return n, len(seen)
}

// writeBundle copies imgs concurrently into the store named store, through a StoreWriter
// when the store has one (archives), else image by image (layouts, dir).
func writeBundle(t *testing.T, store string, imgs []bundleImage) {
	t.Helper()
	ctx := context.Background()
	sref, err := alltransports.ParseStoreName(store)
	if err != nil {
		t.Fatal(err)
	}
	name := sref.ImageReference
	var w types.StoreWriter
	if opener, ok := sref.(types.StoreWriterOpener); ok {
		if w, err = opener.NewStoreWriter(ctx, nil); err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		name = w.ImageReference
	}
	var g errgroup.Group
	for _, bi := range imgs {
		dest, err := name(bi.name)
		if err != nil {
			t.Fatal(err)
		}
		g.Go(func() error {
			_, err := copier.Image(ctx, dest, bi.src, nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if w != nil {
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// checkBundle lists the store and reads every image back: each one, under its name, with its
// original manifest digest and every blob intact.
func checkBundle(t *testing.T, store string, imgs []bundleImage) []types.ListedImage {
	t.Helper()
	ctx := context.Background()
	sref, err := alltransports.ParseStoreName(store)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := sref.(types.ImageLister).ListImages(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]types.ListedImage{}
	for _, l := range listed {
		if l.Name == nil {
			t.Fatalf("%s: image %s listed without a name", store, types.ImageName(l.Ref))
		}
		byName[l.Name.String()] = l
	}
	for _, bi := range imgs {
		want := "docker.io/" + bi.name
		l, ok := byName[want]
		if !ok {
			t.Fatalf("%s: %s not listed (listed: %v)", store, want, listed)
		}
		if l.Digest != bi.img.Digest {
			t.Errorf("%s: %s listed with digest %s, want %s", store, want, l.Digest, bi.img.Digest)
		}
		if rb := e2eVerify(t, l.Ref, nil); rb.TopDigest != bi.img.Digest {
			t.Errorf("%s: %s reads back as %s, want %s", store, types.ImageName(l.Ref), rb.TopDigest, bi.img.Digest)
		}
	}
	return listed
}

// TestBundleStoresSharedBlobsOnce writes three images sharing base layers into an OCI layout,
// an oci-archive, a docker-archive and a dir store in one run each, concurrently: every blob
// is stored once (an archive is the unique blobs plus a little metadata), and every image
// reads back with its original digest.
func TestBundleStoresSharedBlobsOnce(t *testing.T) {
	t.Parallel()
	imgs := bundleImages(t)
	unique, blobs := uniqueBlobBytes(imgs)
	for _, kind := range []string{"oci", "oci-archive", "docker-archive", "dir"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "bundle")
			store := kind + ":" + path
			writeBundle(t, store, imgs)
			if listed := checkBundle(t, store, imgs); len(listed) != len(imgs) {
				t.Errorf("listed %d images, want %d", len(listed), len(imgs))
			}
			switch kind {
			case "oci":
				if n, size := dirBlobs(t, filepath.Join(path, "blobs")); n != blobs || size != unique {
					t.Errorf("layout holds %d blobs of %d bytes, want %d of %d", n, size, blobs, unique)
				}
			case "oci-archive", "docker-archive":
				checkArchiveSize(t, path, unique, blobs)
			}
		})
	}
}

// dirBlobs counts the files below dir and their bytes.
func dirBlobs(t *testing.T, dir string) (n int, size int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		n, size = n+1, size+fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

// checkArchiveSize asserts that the archive holds each distinct blob once: its content is
// every blob plus metadata, and any blob stored twice would add at least a layer's 48 KiB.
func checkArchiveSize(t *testing.T, path string, unique int64, blobs int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	counts, content := tarContents(t, path)
	for name, n := range counts {
		if n != 1 {
			t.Errorf("member %s stored %d times", name, n)
		}
	}
	// Metadata (index.json, manifest.json, …) stays small, and each member costs a header
	// block and at most a block of padding.
	const metadata = 16 << 10
	if bound := unique + int64(len(counts))*1024 + metadata; content < unique || fi.Size() > bound {
		t.Errorf("archive is %d bytes (%d in members) for %d unique blob bytes; want at most %d", fi.Size(), content, unique, bound)
	}
}

// tarContents counts the members of a tar by name and adds up their sizes.
func tarContents(t *testing.T, path string) (map[string]int, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts, total := map[string]int{}, int64(0)
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return counts, total
		}
		if err != nil {
			t.Fatal(err)
		}
		counts[h.Name]++
		total += h.Size
	}
}

// TestDockerArchiveAddsImages writes three images into a docker-archive and then copies a
// fourth one into it with a plain copy: the first three stay, at the same @N, unchanged.
func TestDockerArchiveAddsImages(t *testing.T) {
	t.Parallel()
	imgs := bundleImages(t)
	path := filepath.Join(t.TempDir(), "bundle.tar")
	writeBundle(t, "docker-archive:"+path, imgs)
	positions := func() []digest.Digest { // the images at @0, @1, … (written concurrently, in any order)
		var res []digest.Digest
		for i := 0; ; i++ {
			ref := e2eRef(t, fmt.Sprintf("docker-archive:%s:@%d", path, i))
			d, err := ref.(types.ManifestDigester).ManifestDigest(context.Background(), nil)
			if errors.Is(err, types.ErrManifestNotFound) {
				return res
			}
			if err != nil {
				t.Fatal(err)
			}
			res = append(res, d)
		}
	}
	before := positions()
	fourth, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Architecture: "ppc64le", Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	src := warmSource(t, []conformance.Image{fourth}, fourth.Manifest, fourth.MIMEType)
	e2eCopy(t, e2eRef(t, "docker-archive:"+path+":team/app3:v3"), src, nil)
	all := append(imgs, bundleImage{name: "team/app3:v3", img: fourth})
	checkBundle(t, "docker-archive:"+path, all)
	if after := positions(); len(before) != 3 || !slices.Equal(after, append(before, fourth.Digest)) {
		t.Errorf("images by position: %v before adding the fourth image, %v after", before, after)
	}
	// Copying the fourth image again under its name replaces it rather than adding a fifth.
	e2eCopy(t, e2eRef(t, "docker-archive:"+path+":team/app3:v3"), src, nil)
	if listed := checkBundle(t, "docker-archive:"+path, all); len(listed) != 4 {
		t.Errorf("after re-copying the fourth image, %d images listed", len(listed))
	}
}

// TestDockerArchiveMultiPlatform copies a two-platform index into a docker-archive with
// --all: index.json keeps the whole index under its digest, and manifest.json lists the
// image of the platform chosen by Options.Platforms or, without it, of the running platform
// (here overridden to arm64 through the destination's SystemContext).
func TestDockerArchiveMultiPlatform(t *testing.T) {
	t.Parallel()
	idx, err := conformance.BuildIndex(imgspecv1.MediaTypeImageIndex, false)
	if err != nil {
		t.Fatal(err)
	}
	src := e2eRef(t, "oci:"+filepath.Join(t.TempDir(), "src")+":v1")
	e2eWriteIndex(t, src, idx)
	byArch := map[string]conformance.Image{}
	for _, img := range idx.Instances {
		byArch[img.Platform.Architecture] = img
	}
	for _, tc := range []struct {
		name string
		opts *copier.Options
		want string
	}{
		{"platform flag", &copier.Options{MultiArch: copier.MultiArchAll, Platforms: []types.Platform{{OS: "linux", Architecture: "arm64"}}}, "arm64"},
		{"platform flag amd64", &copier.Options{MultiArch: copier.MultiArchAll, Platforms: []types.Platform{{OS: "linux", Architecture: "amd64"}}}, "amd64"},
		{"running platform", &copier.Options{MultiArch: copier.MultiArchAll, DestinationCtx: &types.SystemContext{ArchitectureChoice: "arm64"}}, "arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "multi.tar")
			res := e2eCopy(t, e2eRef(t, "docker-archive:"+path+":multi:v1"), src, tc.opts)
			if res.ManifestDigest != idx.Digest {
				t.Errorf("copy wrote %s, want the index %s", res.ManifestDigest, idx.Digest)
			}
			if rb := e2eVerify(t, e2eRef(t, "docker-archive:"+path), nil); rb.TopDigest != idx.Digest || len(rb.Images) != 2 {
				t.Errorf("read back %s with %d images, want the index %s with 2", rb.TopDigest, len(rb.Images), idx.Digest)
			}
			items, index := archiveLists(t, path)
			if len(items) != 1 || items[0].Config != "blobs/sha256/"+byArch[tc.want].Config.Digest.Encoded() {
				t.Errorf("manifest.json %+v, want the %s image (config %s)", items, tc.want, byArch[tc.want].Config.Digest)
			}
			if len(index.Manifests) != 1 || index.Manifests[0].Digest != idx.Digest {
				t.Errorf("index.json %+v, want the index %s", index.Manifests, idx.Digest)
			}
		})
	}
}

// archiveLists returns manifest.json and index.json of a docker-archive.
func archiveLists(t *testing.T, path string) ([]struct{ Config string }, imgspecv1.Index) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var items []struct{ Config string }
	var index imgspecv1.Index
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case "manifest.json":
			err = json.NewDecoder(tr).Decode(&items)
		case "index.json":
			err = json.NewDecoder(tr).Decode(&index)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return items, index
}

// TestCompressedBundleThroughRegistry writes gzip- and zstd-compressed bundles (chosen by the
// file suffix), pushes every image to a registry and brings them back into a new compressed
// bundle chosen by SystemContext.ArchiveCompression: digests survive every step, the files
// are compressed as asked, and adding an image to a compressed bundle keeps the others.
func TestCompressedBundleThroughRegistry(t *testing.T) {
	t.Parallel()
	imgs := bundleImages(t)
	reg := testregistry.Start(t, testregistry.Options{})
	for _, tc := range []struct{ kind, suffix, compression string }{
		{"oci-archive", ".tar.gz", "gzip"},
		{"docker-archive", ".tar.zst", "zstd"},
		{"oci-archive", ".tar.zst", "zstd"},
		{"docker-archive", ".tgz", "gzip"},
	} {
		t.Run(tc.kind+tc.suffix, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "bundle"+tc.suffix)
			writeBundle(t, tc.kind+":"+path, imgs)
			checkCompressed(t, path, tc.compression)
			listed := checkBundle(t, tc.kind+":"+path, imgs)
			back := filepath.Join(dir, "back.bundle")
			sys := &types.SystemContext{ArchiveCompression: tc.compression}
			for _, l := range listed {
				remote := e2eRef(t, "docker://"+reg.Host+"/"+strings.ReplaceAll(tc.kind+tc.suffix, ".", "-")+"/"+dref.Path(l.Name)+":"+l.Name.(dref.NamedTagged).Tag())
				if res := e2eCopy(t, remote, l.Ref, nil); res.ManifestDigest != l.Digest {
					t.Errorf("pushed %s as %s, want %s", l.Name, res.ManifestDigest, l.Digest)
				}
				dest, err := alltransports.ParseImageName(tc.kind + ":" + back + ":" + l.Name.String())
				if err != nil {
					t.Fatal(err)
				}
				if res := e2eCopy(t, dest, remote, &copier.Options{DestinationCtx: sys}); res.ManifestDigest != l.Digest {
					t.Errorf("pulled %s as %s, want %s", l.Name, res.ManifestDigest, l.Digest)
				}
			}
			checkCompressed(t, back, tc.compression)
			checkBundle(t, tc.kind+":"+back, imgs)
		})
	}
}

// checkCompressed asserts that the file at path starts with the magic of compression.
func checkCompressed(t *testing.T, path, compression string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"gzip": {0x1f, 0x8b}, "zstd": {0x28, 0xb5, 0x2f, 0xfd}}[compression]
	if !bytes.HasPrefix(magic, want) {
		t.Errorf("%s starts with %x, want %s (%x)", path, magic, compression, want)
	}
}
