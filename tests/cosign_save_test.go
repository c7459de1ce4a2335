package tests

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// cosignSaveLayout writes the layout `cosign save` wrote (testdata/cosign-save, see its
// README) with the fixture image it signed, and returns its path and that image.
func cosignSaveLayout(t *testing.T) (string, *fixtures.Layout) {
	t.Helper()
	l, err := fixtures.Build(fixtures.Options{RefName: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "saved")
	if err := l.Write(p); err != nil {
		t.Fatal(err)
	}
	// cosign's index.json replaces the fixture's; the signature's blobs join the image's.
	src := os.DirFS("testdata/cosign-save")
	err = fs.WalkDir(src, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || (name != "index.json" && !strings.HasPrefix(name, "blobs/")) {
			return err
		}
		b, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(p, name), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, l
}

// TestCosignSaveLayout copies the layout `cosign save` writes (the image, its signatures and
// its attestations, told apart by a "kind" annotation) to a registry with --digest-tags: the
// layout's one image is the signed one, and its signature and attestation arrive byte for byte
// under the tags cosign verify looks for.
func TestCosignSaveLayout(t *testing.T) {
	t.Parallel()
	p, l := cosignSaveLayout(t)
	const sigDigest, attDigest = "sha256:7316261eaa19875571c6f3aed42b40b0f0d5ec8dc2be83c93a0d3f51b967eed9", "sha256:7e90573f0335f60ff1fc3461eabab5fc513b3412f68c52e5afcdd8f906f7ce36"
	want := map[string]string{
		manifest.DigestTagPrefix(l.ManifestDigest) + "sig": sigDigest,
		manifest.DigestTagPrefix(l.ManifestDigest) + "att": attDigest,
	}
	host := testregistry.Start(t, testregistry.Options{}).Host
	for i, src := range []string{"oci:" + p, "oci:" + p + "@" + l.ManifestDigest.String()} {
		repo := fmt.Sprintf("app/signed%d", i)
		res := e2eCopy(t, e2eRef(t, "docker://"+host+"/"+repo+":v1"), e2eRef(t, src), &copier.Options{DigestTags: true})
		if res.ManifestDigest != l.ManifestDigest {
			t.Fatalf("%s: copied %s, want the signed image %s", src, res.ManifestDigest, l.ManifestDigest)
		}
		if len(res.Related) != len(want) {
			t.Errorf("%s: copied %+v, want the tags %v", src, res.Related, want)
		}
		for tag, d := range want {
			b, err := os.ReadFile(filepath.Join(p, "blobs/sha256", d[len("sha256:"):]))
			if err != nil {
				t.Fatal(err)
			}
			if got := getManifestRaw(t, host, repo, tag); !bytes.Equal(got, b) {
				t.Errorf("%s: tag %s at the destination is not cosign's manifest %s", src, tag, d)
			}
		}
	}

	images, err := e2eRef(t, "oci:"+p).(types.ImageLister).ListImages(t.Context(), nil)
	if err != nil || len(images) != 1 || images[0].Digest != l.ManifestDigest {
		t.Errorf("listing the layout: %+v, %v; want only the signed image", images, err)
	}
}
