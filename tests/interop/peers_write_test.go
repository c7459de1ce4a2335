package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// imgcopy reads what peers write.

// TestReadSkopeoOutputs has skopeo write the fixture (and examples/hello when the repository
// has it) as dir, docker-archive (with legacy layer directories), oci and oci-archive, and
// copies each with imgcopy into an OCI layout (unpacked by umoci) and into a registry.
func TestReadSkopeoOutputs(t *testing.T) {
	setup(t, "skopeo", "umoci", "crane", "docker-registry", "regctl")
	fx := getFixture(t)
	host := startRegistry(t)
	sources := []struct {
		name, ref, files, digest, config string
	}{
		{name: "umoci", ref: "oci:" + fx.dir + ":v1", files: "v1", digest: fx.digests["v1"], config: fx.configs["v1"]},
	}
	if ex := exampleImage(t); ex != "" {
		info := skopeoInspect(t, ex)
		raw := skopeo(t, "inspect", "--config", "--raw", ex)
		sources = append(sources, struct{ name, ref, files, digest, config string }{
			name: "example", ref: ex, digest: info.Digest, config: sha256Digest([]byte(raw)),
		})
	}
	formats := []struct {
		name      string
		dst       string // %s = temp dir
		byteExact bool
	}{
		{name: "dir", dst: "dir:%s/dir", byteExact: true},
		{name: "docker-archive", dst: "docker-archive:%s/docker.tar:interop/hello:v1"},
		{name: "oci", dst: "oci:%s/oci:v1", byteExact: true},
		{name: "oci-archive", dst: "oci-archive:%s/oci.tar:v1", byteExact: true},
	}
	for _, src := range sources {
		for _, f := range formats {
			t.Run(src.name+"/"+f.name, func(t *testing.T) {
				written := strings.ReplaceAll(f.dst, "%s", t.TempDir())
				skopeo(t, "copy", src.ref, written)
				if f.name == "docker-archive" {
					checkLegacyLayerDirs(t, strings.SplitN(written, ":", 3)[1])
				}

				layout := filepath.Join(t.TempDir(), "layout")
				got := imgcopyCopy(t, written, "oci:"+layout+":v1", "--format", "oci")
				if f.byteExact && got != src.digest {
					t.Errorf("imgcopy %s -> oci reported %s, want the source's %s", f.name, got, src.digest)
				}
				if src.files != "" {
					unpackAndCheck(t, layout, "v1", src.files)
				}

				ref := host + "/read-skopeo/" + src.name + "-" + f.name + ":v1"
				got = imgcopyCopy(t, written, "docker://"+ref)
				if d := crane(t, "digest", ref); d != got {
					t.Errorf("crane digest %s = %s, imgcopy reported %s", ref, d, got)
				}
				if f.byteExact && got != src.digest {
					t.Errorf("imgcopy %s -> registry reported %s, want the source's %s", f.name, got, src.digest)
				}
				if cfg := craneConfigDigest(t, ref); cfg != src.config {
					t.Errorf("config in the registry is %s, want the source's %s", cfg, src.config)
				}
				crane(t, "validate", "--remote", ref)
			})
		}
	}
}

// checkLegacyLayerDirs makes sure the skopeo archive really has the legacy <id>/layer.tar
// entries the test is meant to cover.
func checkLegacyLayerDirs(t *testing.T, archive string) {
	t.Helper()
	list := run(t, "tar", "-tf", archive)
	if !strings.Contains(list, "/layer.tar") || !strings.Contains(list, "repositories") {
		t.Fatalf("skopeo's docker-archive %s lacks legacy layer directories:\n%s", archive, list)
	}
}

// TestReadCraneOutputs reads crane's tarballs (compressed layers, config named "sha256:…"),
// a multi-image tarball, and OCI layouts with full-reference names and with a nested index.
func TestReadCraneOutputs(t *testing.T) {
	setup(t, "skopeo", "umoci", "crane", "docker-registry", "regctl")
	fx := getFixture(t)
	host := startRegistry(t)
	for _, tag := range []string{"v1", "v2"} {
		skopeo(t, "copy", "oci:"+fx.dir+":"+tag, "docker://"+host+"/src/hello:"+tag)
	}
	skopeo(t, "copy", "--all", "oci:"+fx.dir+":multi", "docker://"+host+"/src/hello:multi")
	tmp := t.TempDir()

	t.Run("tarball", func(t *testing.T) {
		tarball := filepath.Join(tmp, "crane.tar")
		crane(t, "pull", host+"/src/hello:v1", tarball)
		ref := host + "/read-crane/tarball:v1"
		got := imgcopyCopy(t, "docker-archive:"+tarball, "docker://"+ref)
		if d := crane(t, "digest", ref); d != got {
			t.Errorf("crane digest %s = %s, imgcopy reported %s", ref, d, got)
		}
		if cfg := craneConfigDigest(t, ref); cfg != fx.configs["v1"] {
			t.Errorf("config %s, want %s", cfg, fx.configs["v1"])
		}
		crane(t, "validate", "--remote", ref)
		layout := filepath.Join(t.TempDir(), "layout")
		imgcopyCopy(t, "docker-archive:"+tarball, "oci:"+layout+":v1", "--format", "oci")
		unpackAndCheck(t, layout, "v1", "v1")
	})

	t.Run("multi-image-tarball", func(t *testing.T) {
		tarball := filepath.Join(tmp, "multi.tar")
		crane(t, "pull", host+"/src/hello:v1", host+"/src/hello:v2", tarball)
		cases := []struct{ ref, files string }{
			{ref: "docker-archive:" + tarball + ":" + host + "/src/hello:v2", files: "v2"},
			{ref: "docker-archive:" + tarball + ":" + host + "/src/hello:v1", files: "v1"},
			{ref: "docker-archive:" + tarball + ":@0", files: "v1"},
			{ref: "docker-archive:" + tarball + ":@1", files: "v2"},
		}
		for _, c := range cases {
			layout := filepath.Join(t.TempDir(), "layout")
			imgcopyCopy(t, c.ref, "oci:"+layout+":x", "--format", "oci")
			unpackAndCheck(t, layout, "x", c.files)
		}
	})

	t.Run("layout-full-ref-names", func(t *testing.T) {
		layout := filepath.Join(tmp, "crane-layout")
		crane(t, "pull", "--format", "oci", "--annotate-ref", host+"/src/hello:v1", layout)
		name := layoutEntry(t, layout, host+"/src/hello:v1").Annotations[imgspecv1.AnnotationRefName]
		for _, src := range []string{"oci:" + layout + ":" + name, "oci:" + layout} {
			out := filepath.Join(t.TempDir(), "dir")
			if got := imgcopyCopy(t, src, "dir:"+out); got != fx.digests["v1"] {
				t.Errorf("imgcopy %s reported %s, want %s", src, got, fx.digests["v1"])
			}
			m, err := os.ReadFile(filepath.Join(out, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if d := sha256Digest(m); d != fx.digests["v1"] {
				t.Errorf("dir manifest.json has digest %s, want %s", d, fx.digests["v1"])
			}
		}
	})

	t.Run("layout-nested-index", func(t *testing.T) {
		// crane pull of an index writes it as the only, unnamed, entry of index.json.
		layout := filepath.Join(tmp, "crane-index")
		crane(t, "pull", "--format", "oci", host+"/src/hello:multi", layout)
		ref := host + "/read-crane/index:v1"
		got := imgcopyCopy(t, "oci:"+layout, "docker://"+ref, "--multi-arch", "all")
		if got != fx.digests["multi"] {
			t.Errorf("imgcopy reported %s, want the index digest %s", got, fx.digests["multi"])
		}
		if d := crane(t, "digest", ref); d != got {
			t.Errorf("crane digest %s = %s, imgcopy reported %s", ref, d, got)
		}
	})
}

// TestReadUmociLayout copies the umoci-built layout into a dir and checks the manifest bytes are
// the very ones umoci wrote.
func TestReadUmociLayout(t *testing.T) {
	setup(t, "umoci")
	fx := getFixture(t)
	for _, tag := range []string{"v1", "v2"} {
		out := filepath.Join(t.TempDir(), "dir")
		if got := imgcopyCopy(t, "oci:"+fx.dir+":"+tag, "dir:"+out); got != fx.digests[tag] {
			t.Errorf("%s: imgcopy reported %s, want %s", tag, got, fx.digests[tag])
		}
		want, err := os.ReadFile(blobPath(fx.dir, fx.digests[tag]))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: dir manifest.json differs from umoci's manifest:\n%s\nwant\n%s", tag, got, want)
		}
	}
}

// TestReadRegctlArtifactWithSubject pushes an artifact with a subject using regctl (the
// registry has no referrers API, so regctl also writes the sha256-<hex> fallback tag) and copies
// the artifact and the fallback index with imgcopy.
func TestReadRegctlArtifactWithSubject(t *testing.T) {
	setup(t, "skopeo", "regctl", "crane", "docker-registry")
	fx := getFixture(t)
	host := startRegistry(t)
	subject := host + "/art/hello:v1"
	skopeo(t, "copy", "oci:"+fx.dir+":v1", "docker://"+subject)
	sbom := filepath.Join(t.TempDir(), "sbom.json")
	const sbomContent = `{"sbom":"interop","packages":[]}`
	if err := os.WriteFile(sbom, []byte(sbomContent), 0o644); err != nil {
		t.Fatal(err)
	}
	const artifactType = "application/vnd.example.sbom"
	regctl(t, "artifact", "put", "--subject", subject, "--artifact-type", artifactType,
		"--file", sbom, "--file-media-type", "application/vnd.example.sbom.v1+json",
		"--annotation", "org.example.kind=sbom")
	artifact := regctl(t, "artifact", "list", subject, "--format", "{{range .Descriptors}}{{println .Digest}}{{end}}")
	if artifact == "" || strings.Contains(artifact, "\n") {
		t.Fatalf("regctl artifact list: want one referrer, got %q", artifact)
	}

	layout := filepath.Join(t.TempDir(), "layout")
	got := imgcopyCopy(t, "docker://"+host+"/art/hello@"+artifact, "oci:"+layout+":sbom")
	if got != artifact {
		t.Errorf("imgcopy reported %s for the artifact, want %s", got, artifact)
	}
	b, err := os.ReadFile(blobPath(layout, artifact))
	if err != nil {
		t.Fatalf("artifact manifest not in the layout: %v", err)
	}
	var m imgspecv1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Subject == nil || m.Subject.Digest.String() != fx.digests["v1"] || m.ArtifactType != artifactType {
		t.Errorf("copied artifact: subject %v, artifactType %q; want subject %s, %q", m.Subject, m.ArtifactType, fx.digests["v1"], artifactType)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("copied artifact has %d layers, want 1", len(m.Layers))
	}
	if data, err := os.ReadFile(blobPath(layout, m.Layers[0].Digest.String())); err != nil || string(data) != sbomContent {
		t.Errorf("artifact file in the layout: %q, %v; want %q", data, err, sbomContent)
	}

	// Registry to registry keeps the artifact byte for byte, subject included.
	ref := host + "/art-copy/hello:sbom"
	if got := imgcopyCopy(t, "docker://"+host+"/art/hello@"+artifact, "docker://"+ref); got != artifact {
		t.Errorf("imgcopy reported %s for the registry copy, want %s", got, artifact)
	}
	if d := regctl(t, "image", "digest", ref); d != artifact {
		t.Errorf("regctl image digest %s = %s, want %s", ref, d, artifact)
	}

	// The tag-schema fallback index regctl wrote lists the artifact; imgcopy copies it whole.
	fallback := host + "/art/hello:" + strings.Replace(fx.digests["v1"], ":", "-", 1)
	want := crane(t, "digest", fallback)
	out := filepath.Join(t.TempDir(), "refs")
	if got := imgcopyCopy(t, "docker://"+fallback, "oci:"+out+":refs", "--multi-arch", "all"); got != want {
		t.Errorf("imgcopy reported %s for the fallback index, want %s", got, want)
	}
	if _, err := os.Stat(blobPath(out, artifact)); err != nil {
		t.Errorf("the fallback index copy lacks the artifact manifest: %v", err)
	}
}
