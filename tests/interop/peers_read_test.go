package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Peers read what imgcopy writes.

// TestSkopeoReadsImgcopyOutputs copies the fixture with imgcopy into each local format and has
// skopeo inspect it and copy it on into an OCI layout that umoci then unpacks.
func TestSkopeoReadsImgcopyOutputs(t *testing.T) {
	setup(t, "skopeo", "umoci")
	fx := getFixture(t)
	src := "oci:" + fx.dir + ":v1"
	tests := []struct {
		name      string
		dst       string // %s = temp dir
		flags     []string
		byteExact bool // the manifest is written unchanged, so its digest is the fixture's
	}{
		{name: "dir", dst: "dir:%s/out", byteExact: true},
		{name: "oci", dst: "oci:%s/out:v1", flags: []string{"--format", "oci"}, byteExact: true},
		{name: "oci-archive", dst: "oci-archive:%s/out.tar:v1", byteExact: true},
		{name: "docker-archive", dst: "docker-archive:%s/out.tar:interop/hello:v1"},
		{name: "dir-v2s2", dst: "dir:%s/out", flags: []string{"--format", "v2s2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			dst := strings.ReplaceAll(tt.dst, "%s", tmp)
			got := imgcopyCopy(t, src, dst, tt.flags...)
			if tt.byteExact && got != fx.digests["v1"] {
				t.Errorf("imgcopy reported %s, want the fixture's %s (manifest unchanged)", got, fx.digests["v1"])
			}
			info := skopeoInspect(t, dst)
			if len(info.Layers) != 2 {
				t.Errorf("skopeo inspect %s: %d layers, want 2", dst, len(info.Layers))
			}
			if info.Labels["org.example.interop"] != "v1" {
				t.Errorf("skopeo inspect %s: labels %v, want org.example.interop=v1", dst, info.Labels)
			}
			if raw := skopeoRawDigest(t, dst); raw != got && tt.name != "docker-archive" {
				t.Errorf("skopeo reads manifest %s from %s, imgcopy reported %s", raw, dst, got)
			}
			back := filepath.Join(tmp, "back")
			skopeo(t, "copy", dst, "oci:"+back+":v1")
			unpackAndCheck(t, back, "v1", "v1")
		})
	}
}

// TestUmociUnpacksImgcopyLayouts checks that umoci unpacks imgcopy's OCI layouts, including
// ones converted from Docker media types (umoci refuses those) with --format oci.
func TestUmociUnpacksImgcopyLayouts(t *testing.T) {
	setup(t, "skopeo", "umoci", "docker-registry", "regctl")
	fx := getFixture(t)
	host := startRegistry(t)
	tmp := t.TempDir()
	dockerArchive := filepath.Join(tmp, "skopeo.tar")
	skopeo(t, "copy", "oci:"+fx.dir+":v1", "docker-archive:"+dockerArchive+":interop/hello:v1")
	skopeo(t, "copy", "--format", "v2s2", "oci:"+fx.dir+":v1", "docker://"+host+"/interop/s2:v1")
	tests := []struct {
		name string
		src  string
	}{
		{name: "oci-layout", src: "oci:" + fx.dir + ":v1"},
		{name: "docker-archive", src: "docker-archive:" + dockerArchive},
		{name: "registry-v2s2", src: "docker://" + host + "/interop/s2:v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "layout")
			imgcopyCopy(t, tt.src, "oci:"+out+":v1", "--format", "oci")
			unpackAndCheck(t, out, "v1", "v1")
		})
	}
}

// TestCraneReadsImgcopyOutputs has crane validate and push imgcopy's docker-archive and OCI
// layout, and checks that the layout push keeps the digest.
func TestCraneReadsImgcopyOutputs(t *testing.T) {
	setup(t, "crane", "docker-registry", "regctl")
	fx := getFixture(t)
	host := startRegistry(t)
	tmp := t.TempDir()

	archive := filepath.Join(tmp, "out.tar")
	imgcopyCopy(t, "oci:"+fx.dir+":v1", "docker-archive:"+archive+":interop/hello:v1")
	crane(t, "validate", "--tarball", archive)
	crane(t, "digest", "--tarball", archive)
	crane(t, "push", archive, host+"/crane/archive:v1")
	crane(t, "validate", "--remote", host+"/crane/archive:v1")
	if cfg := craneConfigDigest(t, host+"/crane/archive:v1"); cfg != fx.configs["v1"] {
		t.Errorf("crane pushed our archive with config %s, want the fixture's %s (diff_ids and all unchanged)", cfg, fx.configs["v1"])
	}

	for _, tag := range []string{"v1", "multi"} {
		layout := filepath.Join(tmp, "layout-"+tag)
		// A layout with one entry: crane push takes it as it is (an image or an index).
		imgcopyCopy(t, "oci:"+fx.dir+":"+tag, "oci:"+layout+":"+tag, "--multi-arch", "all")
		ref := host + "/crane/layout:" + tag
		crane(t, "push", layout, ref)
		if got := crane(t, "digest", ref); got != fx.digests[tag] {
			t.Errorf("crane push of our layout %s gave %s, want %s", tag, got, fx.digests[tag])
		}
		crane(t, "validate", "--remote", ref)
	}
}

// TestRegctlReadsImgcopyOutputs has regctl import imgcopy's archives into a registry and read
// imgcopy's OCI layout.
func TestRegctlReadsImgcopyOutputs(t *testing.T) {
	setup(t, "regctl", "docker-registry")
	fx := getFixture(t)
	host := startRegistry(t)
	tmp := t.TempDir()

	t.Run("oci-archive", func(t *testing.T) {
		ociArchive := filepath.Join(tmp, "oci.tar")
		imgcopyCopy(t, "oci:"+fx.dir+":v1", "oci-archive:"+ociArchive+":v1")
		regctl(t, "image", "import", host+"/regctl/hello:oci", ociArchive)
		if got := regctl(t, "image", "digest", host+"/regctl/hello:oci"); got != fx.digests["v1"] {
			t.Errorf("regctl imported our oci-archive as %s, want %s", got, fx.digests["v1"])
		}
	})

	t.Run("docker-archive", func(t *testing.T) {
		dockerArchive := filepath.Join(tmp, "docker.tar")
		imgcopyCopy(t, "oci:"+fx.dir+":v1", "docker-archive:"+dockerArchive+":interop/hello:v1")
		regctl(t, "image", "import", host+"/regctl/hello:docker", dockerArchive)
		// imgcopy's archive carries an OCI layout beside manifest.json; whether regctl's import
		// uses it (and so keeps the digest) is regctl's choice, so only report it.
		t.Logf("regctl import of our docker-archive: digest %s (source %s)", regctl(t, "image", "digest", host+"/regctl/hello:docker"), fx.digests["v1"])
		if cfg := regctl(t, "manifest", "get", host+"/regctl/hello:docker", "--format", "{{(.GetConfig).Digest}}"); cfg != fx.configs["v1"] {
			t.Errorf("regctl imported our docker-archive with config %s, want %s", cfg, fx.configs["v1"])
		}
	})

	for _, tag := range []string{"v1", "multi"} {
		t.Run("layout-"+tag, func(t *testing.T) {
			layout := filepath.Join(tmp, "layout-"+tag)
			got := imgcopyCopy(t, "oci:"+fx.dir+":"+tag, "oci:"+layout+":"+tag, "--multi-arch", "all")
			ref := "ocidir://" + layout + ":" + tag
			regctl(t, "manifest", "get", ref)
			if d := regctl(t, "image", "digest", ref); d != got || d != fx.digests[tag] {
				t.Errorf("regctl reads %s from our layout, imgcopy reported %s, fixture %s", d, got, fx.digests[tag])
			}
		})
	}
}

// TestDigestAgreement checks that the digest imgcopy reports (--digestfile) is the one crane,
// skopeo and regctl compute for what it wrote, for byte-exact copies and for conversions.
func TestDigestAgreement(t *testing.T) {
	setup(t, "crane", "skopeo", "regctl", "docker-registry")
	fx := getFixture(t)
	host := startRegistry(t)
	tmp := t.TempDir()
	dockerArchive := filepath.Join(tmp, "skopeo.tar")
	skopeo(t, "copy", "oci:"+fx.dir+":v1", "docker-archive:"+dockerArchive+":interop/hello:v1")

	tests := []struct {
		name  string
		src   string
		repo  string
		flags []string
		want  string // expected digest; "" when converted (then only the peers must agree with imgcopy)
	}{
		{name: "oci-image", src: "oci:" + fx.dir + ":v1", repo: "agree/hello:v1", want: fx.digests["v1"]},
		{name: "oci-index", src: "oci:" + fx.dir + ":multi", repo: "agree/multi:v1", flags: []string{"--multi-arch", "all"}, want: fx.digests["multi"]},
		{name: "to-v2s2", src: "oci:" + fx.dir + ":v1", repo: "agree/s2:v1", flags: []string{"--format", "v2s2"}},
		{name: "docker-archive", src: "docker-archive:" + dockerArchive, repo: "agree/archive:v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := host + "/" + tt.repo
			got := imgcopyCopy(t, tt.src, "docker://"+ref, tt.flags...)
			if tt.want != "" && got != tt.want {
				t.Errorf("imgcopy reported %s, want %s (manifest unchanged)", got, tt.want)
			}
			if d := crane(t, "digest", ref); d != got {
				t.Errorf("crane digest %s = %s, imgcopy reported %s", ref, d, got)
			}
			if d := skopeoRawDigest(t, "docker://"+ref); d != got {
				t.Errorf("skopeo reads manifest %s, imgcopy reported %s", d, got)
			}
			if d := regctl(t, "image", "digest", ref); d != got {
				t.Errorf("regctl image digest %s = %s, imgcopy reported %s", ref, d, got)
			}
			crane(t, "validate", "--remote", ref)

			// And back from the registry into a dir: unchanged bytes, same digest.
			out := filepath.Join(t.TempDir(), "dir")
			if back := imgcopyCopy(t, "docker://"+ref, "dir:"+out, "--multi-arch", "all"); back != got {
				t.Errorf("registry -> dir reported %s, want %s", back, got)
			}
			if m, err := os.ReadFile(filepath.Join(out, "manifest.json")); err != nil || sha256Digest(m) != got {
				t.Errorf("registry -> dir: manifest.json digest %s (%v), want %s", sha256Digest(m), err, got)
			}
			if tt.want == "" {
				return // Docker media types: an OCI layout would convert them
			}
			layout := filepath.Join(t.TempDir(), "layout")
			if back := imgcopyCopy(t, "docker://"+ref, "oci:"+layout+":x", "--multi-arch", "all"); back != got {
				t.Errorf("registry -> oci reported %s, want %s", back, got)
			}
			if d := regctl(t, "image", "digest", "ocidir://"+layout+":x"); d != got {
				t.Errorf("regctl reads %s from the layout, want %s", d, got)
			}
		})
	}
	t.Run("platform", func(t *testing.T) {
		ref := host + "/agree/platform:v1"
		imgcopyCopy(t, "oci:"+fx.dir+":multi", "docker://"+ref, "--multi-arch", "all")
		want := layoutEntry(t, fx.dir, "multi-arm64").Digest.String()
		if d := crane(t, "digest", "--platform", "linux/arm64", ref); d != want {
			t.Errorf("crane digest --platform linux/arm64 %s = %s, want %s", ref, d, want)
		}
	})
}

// TestPeersReadImgcopyMultiTagArchive writes a docker-archive with an additional tag and has
// skopeo pick the image by each name, and crane validate it.
func TestPeersReadImgcopyMultiTagArchive(t *testing.T) {
	setup(t, "skopeo", "crane")
	fx := getFixture(t)
	archive := filepath.Join(t.TempDir(), "tags.tar")
	imgcopyCopy(t, "oci:"+fx.dir+":v1", "docker-archive:"+archive+":interop/hello:v1", "--additional-tag", "interop/hello:also")
	for _, name := range []string{"interop/hello:v1", "interop/hello:also"} {
		info := skopeoInspect(t, "docker-archive:"+archive+":"+name)
		if info.Labels["org.example.interop"] != "v1" || len(info.Layers) != 2 {
			t.Errorf("skopeo inspect docker-archive:…:%s: labels %v, %d layers", name, info.Labels, len(info.Layers))
		}
	}
	crane(t, "validate", "--tarball", archive)
}
