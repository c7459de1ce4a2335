package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// cliStoreImages is the part of the list-tags and inspect output for a bundle that the tests
// look at.
type cliStoreImages struct {
	Tags   []string
	Images []struct {
		Name, Reference, Digest string
		Platforms               []string
	}
}

// TestCLIBundle builds a bundle with plain copies: a single-platform image and a
// two-platform one (--all --platform) added to one docker-archive, compressed by its suffix.
// list-tags and inspect show every image with its platforms, verify passes, and finds a
// flipped byte with exit code 6 and the blob's digest.
func TestCLIBundle(t *testing.T) {
	t.Parallel()
	single, err := fixtures.Build(fixtures.Options{})
	if err != nil {
		t.Fatal(err)
	}
	multi, err := fixtures.Build(fixtures.Options{Platforms: []string{"linux/amd64", "linux/arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for name, l := range map[string]*fixtures.Layout{"single": single, "multi": multi} {
		if err := l.Write(filepath.Join(tmp, name)); err != nil {
			t.Fatal(err)
		}
	}
	bundle := filepath.Join(tmp, "bundle.tar.zst")
	mustCLI(t, "--quiet", "oci:"+filepath.Join(tmp, "single")+":latest", "docker-archive:"+bundle+":app:1")
	mustCLI(t, "--quiet", "--all", "--platform", "linux/arm64", "oci:"+filepath.Join(tmp, "multi")+":latest", "docker-archive:"+bundle+":multi:2")
	checkCompressed(t, bundle, "zstd")

	var listed cliStoreImages
	if err := json.Unmarshal([]byte(mustCLI(t, "list-tags", "docker-archive:"+bundle).stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed.Tags, []string{"docker.io/library/app:1", "docker.io/library/multi:2"}) || len(listed.Images) != 2 {
		t.Fatalf("list-tags: %+v", listed)
	}
	if img := listed.Images[1]; img.Digest != multi.ManifestDigest.String() || !slices.Equal(img.Platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("multi-platform image listed as %+v, want digest %s and both platforms", img, multi.ManifestDigest)
	}
	if img := listed.Images[0]; img.Digest != single.ManifestDigest.String() || !slices.Equal(img.Platforms, []string{"linux/amd64"}) {
		t.Errorf("single image listed as %+v", img)
	}
	var inspected struct {
		Store string
		cliStoreImages
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "inspect", "docker-archive:"+bundle).stdout), &inspected); err != nil {
		t.Fatal(err)
	}
	if len(inspected.Images) != 2 || inspected.Images[1].Reference != "docker-archive:"+bundle+":docker.io/library/multi:2" {
		t.Errorf("inspect of the bundle: %+v", inspected)
	}
	if res := mustCLI(t, "verify", "docker-archive:"+bundle); !strings.Contains(res.stdout, "Checked 2 image(s)") || !strings.Contains(res.stdout, "0 problem(s)") {
		t.Errorf("verify of the intact bundle printed %q", res.stdout)
	}

	// The same bundle, uncompressed, with one layer damaged.
	plain := filepath.Join(tmp, "plain.tar")
	mustCLI(t, "--quiet", "--archive-compress", "none", "oci:"+filepath.Join(tmp, "single")+":latest", "docker-archive:"+plain+":app:1")
	layer := single.Images[0].Layers[0].Digest
	off, _ := tarMember(t, plain, "blobs/sha256/"+layer.Encoded())
	flipByte(t, plain, off+10)
	res := cli(t, "verify", "docker-archive:"+plain)
	if res.code != types.ClassVerification.ExitCode() || !strings.Contains(res.stderr, layer.String()) || !strings.Contains(res.stdout, "1 problem(s)") {
		t.Errorf("verify of a damaged bundle: exit %d, stdout %q, stderr %q; want exit %d naming %s", res.code, res.stdout, res.stderr, types.ClassVerification.ExitCode(), layer)
	}
	store := filepath.Join(tmp, "store")
	mustCLI(t, "--quiet", "oci:"+filepath.Join(tmp, "single")+":latest", "dir:"+filepath.Join(store, "team", "app:1"))
	var dirTags cliStoreImages
	if err := json.Unmarshal([]byte(mustCLI(t, "list-tags", "dir:"+store).stdout), &dirTags); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dirTags.Tags, []string{"team/app:1"}) || len(dirTags.Images) != 1 || dirTags.Images[0].Digest != single.ManifestDigest.String() {
		t.Errorf("list-tags of a dir: store: %+v", dirTags)
	}
	if res := cli(t, "--quiet", "--archive-compress", "lz4", "oci:"+filepath.Join(tmp, "single")+":latest", "docker-archive:"+filepath.Join(tmp, "x.tar")); res.code != 2 {
		t.Errorf("--archive-compress lz4: exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(tmp, "x.tar")); !os.IsNotExist(err) {
		t.Errorf("a refused copy left %s: %v", filepath.Join(tmp, "x.tar"), err)
	}
}
