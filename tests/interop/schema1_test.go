package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	godigest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// schema1Files are files of the generated schema1 image's rootfs (tests/internal/fixtures).
var schema1Files = map[string]string{
	"hello.txt":       "Hello from imgcopy! (linux/amd64)\n",
	"etc/os-release":  "NAME=hello\nID=hello\nVERSION_ID=1.0.0\n",
	"usr/share/hello": "",
}

// startSchema1Registry serves a libtrust-signed schema1 image (what old registries serve)
// from a static in-process registry and returns its docker:// reference.
func startSchema1Registry(t *testing.T) (*fixtures.Schema1Image, string) {
	t.Helper()
	img, err := fixtures.BuildSchema1("legacy/app", "v1", false)
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[godigest.Digest][]byte{}
	for _, l := range img.Layers {
		blobs[l.Digest] = l.Data
	}
	reg := testregistry.StartStatic(t, testregistry.StaticImage{
		Repo: "legacy/app", Tag: "v1", Manifest: img.Manifest, MIMEType: img.MIMEType, Digest: img.Digest, Blobs: blobs,
	})
	return img, "docker://" + reg.Host + "/legacy/app:v1"
}

// schema1Config is the part of an image config the schema1 tests compare.
type schema1Config struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Cmd []string `json:"Cmd"`
		Env []string `json:"Env"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		CreatedBy  string `json:"created_by"`
		EmptyLayer bool   `json:"empty_layer"`
	} `json:"history"`
}

func parseConfig(t *testing.T, raw string) schema1Config {
	t.Helper()
	var c schema1Config
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatalf("parsing config: %v\n%s", err, raw)
	}
	return c
}

// TestPeersReadConvertedSchema1 copies a signed schema1 image from a registry into an OCI
// layout, an oci-archive and a docker-archive with imgcopy's defaults; skopeo inspects and
// copies each result, umoci unpacks the layouts, and the config agrees with skopeo's own
// conversion of the same image (diff IDs, history, settings).
func TestPeersReadConvertedSchema1(t *testing.T) {
	setup(t, "skopeo", "umoci")
	img, src := startSchema1Registry(t)
	skopeoArchive := filepath.Join(t.TempDir(), "skopeo.tar")
	skopeo(t, "copy", src, "docker-archive:"+skopeoArchive+":legacy/app:v1")
	want := parseConfig(t, skopeo(t, "inspect", "--config", "--raw", "docker-archive:"+skopeoArchive))
	var diffIDs []string
	for _, d := range img.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}
	if !slices.Equal(want.RootFS.DiffIDs, diffIDs) {
		t.Fatalf("skopeo's own conversion has diff IDs %v, the fixture %v", want.RootFS.DiffIDs, diffIDs)
	}
	cases := []struct {
		name, dst string // %s = temp dir
		layout    string // OCI layout to unpack with umoci ("" for none)
	}{
		{name: "oci", dst: "oci:%s/layout:v1", layout: "%s/layout"},
		{name: "oci-archive", dst: "oci-archive:%s/image.tar:v1"},
		{name: "docker-archive", dst: "docker-archive:%s/image.tar:legacy/app:v1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dst := strings.ReplaceAll(tc.dst, "%s", dir)
			imgcopyCopy(t, src, dst)
			info := skopeoInspect(t, dst)
			if info.Architecture != "amd64" || info.Os != "linux" || len(info.Layers) != 2 || info.Labels["org.opencontainers.image.title"] != "schema1" {
				t.Errorf("skopeo inspect %s: %+v", dst, info)
			}
			got := parseConfig(t, skopeo(t, "inspect", "--config", "--raw", dst))
			if !slices.Equal(got.RootFS.DiffIDs, want.RootFS.DiffIDs) || len(got.History) != len(want.History) ||
				got.Architecture != want.Architecture || got.OS != want.OS || !slices.Equal(got.Config.Cmd, want.Config.Cmd) ||
				!slices.Equal(got.Config.Env, want.Config.Env) {
				t.Errorf("config differs from skopeo's conversion:\n got %+v\nwant %+v", got, want)
			}
			for i := range got.History {
				if i < len(want.History) && got.History[i] != want.History[i] {
					t.Errorf("history[%d] = %+v, skopeo's %+v", i, got.History[i], want.History[i])
				}
			}
			// skopeo reads every blob of the converted image (verifying each) into a layout
			// that umoci unpacks.
			copied := filepath.Join(t.TempDir(), "copied")
			skopeo(t, "copy", "--format", "oci", dst, "oci:"+copied+":v1")
			checkSchema1Rootfs(t, copied)
			if tc.layout != "" {
				checkSchema1Rootfs(t, strings.ReplaceAll(tc.layout, "%s", dir))
			}
		})
	}
}

// checkSchema1Rootfs unpacks layout:v1 with umoci and checks the schema1 image's files.
func checkSchema1Rootfs(t *testing.T, layout string) {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--rootless", "--image", layout+":v1", bundle)
	for path, content := range schema1Files {
		p := filepath.Join(bundle, "rootfs", path)
		if content == "" {
			if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
				t.Errorf("unpacked %s lacks the directory /%s: %v", layout, path, err)
			}
			continue
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != content {
			t.Errorf("unpacked %s: /%s = %q, %v; want %q", layout, path, got, err, content)
		}
	}
}
