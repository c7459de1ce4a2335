package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// copyImage writes img to ref the way the copy engine does.
func copyImage(t *testing.T, ref types.ImageReference, sys *types.SystemContext, img conformance.Image) {
	t.Helper()
	ctx := context.Background()
	dest, err := ref.NewImageDestination(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	for i, b := range img.Blobs() {
		info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
		if _, ok, err := dest.TryReusingBlob(ctx, info, types.ReuseOptions{}); err != nil {
			t.Fatal(err)
		} else if ok {
			continue
		}
		if _, err := dest.PutBlob(ctx, bytes.NewReader(b.Data), info, types.PutBlobOptions{IsConfig: i == 0, LayerIndex: i - 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
}

func parse(t *testing.T, s string) types.ImageReference {
	t.Helper()
	ref, err := Transport.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func readManifest(t *testing.T, ref types.ImageReference) []byte {
	t.Helper()
	src, err := ref.NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, _, err := src.GetManifest(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tagged(t *testing.T, s string) dref.NamedTagged {
	t.Helper()
	n, err := dref.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n.(dref.NamedTagged)
}

func TestMultiImageWriter(t *testing.T) {
	a, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType, Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType, Architecture: "arm64", Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "multi.tar")
	w := newStoreWriter(t, path)
	for _, img := range []struct {
		name string
		img  conformance.Image
	}{{"a:1", a}, {"quay.io/b/b:2", b}} {
		ref, err := w.ImageReference(img.name)
		if err != nil {
			t.Fatal(err)
		}
		copyImage(t, ref, nil, img.img)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("archive visible before Writer.Commit: %v", err)
		}
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string][]byte{path + ":a:1": a.Manifest, path + ":@0": a.Manifest, path + ":quay.io/b/b:2": b.Manifest, path + ":@1": b.Manifest} {
		if got := readManifest(t, parse(t, ref)); !bytes.Equal(got, want) {
			t.Errorf("%s: manifest not preserved", ref)
		}
	}
	tags, err := parse(t, path).(types.TagLister).ListTags(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docker.io/library/a:1", "quay.io/b/b:2"}; !slices.Equal(tags, want) {
		t.Errorf("ListTags = %v, want %v", tags, want)
	}
	// The layers both images share are stored once.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[hdr.Name]++
	}
	shared := "blobs/sha256/" + a.Layers[0].Digest.Encoded()
	if a.Layers[0].Digest != b.Layers[0].Digest || seen[shared] != 1 {
		t.Errorf("shared layer %s stored %d times", shared, seen[shared])
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("temporary files left: %v", left)
	}
}

// newStoreWriter opens a StoreWriter on the archive at path, closed when the test ends.
func newStoreWriter(t *testing.T, path string) types.StoreWriter {
	t.Helper()
	store, err := Transport.(types.StoreTransport).ParseStoreReference(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.(types.StoreWriterOpener).NewStoreWriter(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestMultiImageWriterWithoutImages(t *testing.T) {
	dir := t.TempDir()
	w := newStoreWriter(t, filepath.Join(dir, "x.tar"))
	if err := w.Commit(context.Background()); err == nil || !strings.Contains(err.Error(), "no image") {
		t.Errorf("want an error for an empty archive, got %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
}

func TestReferenceRoundTrip(t *testing.T) {
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.tar")
	sys := &types.SystemContext{DockerArchiveAdditionalTags: []dref.NamedTagged{tagged(t, "extra:tag")}}
	copyImage(t, parse(t, path+":busybox:1"), sys, img)
	for _, ref := range []string{path, path + ":busybox:1", path + ":extra:tag", path + ":@0"} {
		if got := readManifest(t, parse(t, ref)); !bytes.Equal(got, img.Manifest) {
			t.Errorf("%s: manifest not preserved", ref)
		}
	}
	if _, err := parse(t, path+":@0").NewImageDestination(context.Background(), nil); err == nil {
		t.Error("an @N reference accepted writing")
	}
	if _, err := parse(t, path+":other:1").NewImageSource(context.Background(), nil); !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("unknown name: want ErrManifestNotFound, got %v", err)
	}
	if _, err := parse(t, filepath.Join(t.TempDir(), "missing.tar")).NewImageSource(context.Background(), nil); !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("missing archive: want ErrManifestNotFound, got %v", err)
	}
}

// TestAddImagesAcrossLayouts adds images to an archive written in the other layout (classic
// into Docker 25+, and back): the images already there are kept, readable, with their
// configs; the last image written keeps its manifest bytes when the layout can hold them.
func TestAddImagesAcrossLayouts(t *testing.T) {
	imgs := map[string]conformance.Image{}
	for _, arch := range []string{"amd64", "arm64", "s390x"} {
		img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType, Architecture: arch})
		if err != nil {
			t.Fatal(err)
		}
		imgs[arch] = img
	}
	path := filepath.Join(t.TempDir(), "mixed.tar")
	classic := &types.SystemContext{DockerArchiveClassic: true}
	copyImage(t, parse(t, path+":a:1"), nil, imgs["amd64"])
	copyImage(t, parse(t, path+":b:1"), classic, imgs["arm64"])
	copyImage(t, parse(t, path+":c:1"), nil, imgs["s390x"])
	for name, img := range map[string]conformance.Image{"a:1": imgs["amd64"], "b:1": imgs["arm64"], "c:1": imgs["s390x"]} {
		ref := parse(t, path+":"+name)
		b := readManifest(t, ref)
		m, err := manifest.FromBlob(b, "")
		if err != nil {
			t.Fatal(err)
		}
		if m.ConfigInfo().Digest != img.Config.Digest {
			t.Errorf("%s: config %s, want %s", name, m.ConfigInfo().Digest, img.Config.Digest)
		}
		if name == "c:1" && !bytes.Equal(b, img.Manifest) {
			t.Errorf("%s: manifest not preserved", name)
		}
		src, err := ref.NewImageSource(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range m.LayerInfos() {
			rc, _, err := src.GetBlob(context.Background(), l.BlobInfo, types.GetBlobOptions{})
			if err != nil {
				t.Fatalf("%s: layer %s: %v", name, l.Digest, err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || digest.FromBytes(data) != l.Digest {
				t.Errorf("%s: layer %s reads back as %s (%v)", name, l.Digest, digest.FromBytes(data), err)
			}
		}
		src.Close()
	}
}
