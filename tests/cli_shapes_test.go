package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// shapeLayout writes an OCI layout by hand, for image shapes the fixtures generator does not
// build: buildx indexes with attestations, artifacts, nested indexes.
type shapeLayout struct {
	t    *testing.T
	dir  string
	tags []imgspecv1.Descriptor
}

func newShapeLayout(t *testing.T) *shapeLayout {
	t.Helper()
	l := &shapeLayout{t: t, dir: filepath.Join(t.TempDir(), "layout")}
	if err := os.MkdirAll(filepath.Join(l.dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	l.write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return l
}

func (l *shapeLayout) write(name string, b []byte) {
	l.t.Helper()
	if err := os.WriteFile(filepath.Join(l.dir, filepath.FromSlash(name)), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func (l *shapeLayout) blob(mediaType string, b []byte) imgspecv1.Descriptor {
	d := digest.FromBytes(b)
	l.write("blobs/sha256/"+d.Encoded(), b)
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (l *shapeLayout) json(mediaType string, v any) imgspecv1.Descriptor {
	l.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.blob(mediaType, b)
}

// image writes a one-layer image for arch and returns its descriptor with the platform set.
func (l *shapeLayout) image(arch string) imgspecv1.Descriptor {
	l.t.Helper()
	var tarBuf, gzBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	if err := tw.WriteHeader(&tar.Header{Name: arch, Mode: 0o644, Size: int64(len(arch)), Typeflag: tar.TypeReg}); err != nil {
		l.t.Fatal(err)
	}
	tw.Write([]byte(arch))
	tw.Close()
	zw := gzip.NewWriter(&gzBuf)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	layer := l.blob(imgspecv1.MediaTypeImageLayerGzip, gzBuf.Bytes())
	config := l.json(imgspecv1.MediaTypeImageConfig, imgspecv1.Image{Platform: imgspecv1.Platform{OS: "linux", Architecture: arch},
		RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tarBuf.Bytes())}}})
	d := l.json(imgspecv1.MediaTypeImageManifest, imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageManifest, Config: config, Layers: []imgspecv1.Descriptor{layer}})
	d.Platform = &imgspecv1.Platform{OS: "linux", Architecture: arch}
	return d
}

// attestation writes a buildx attestation manifest for image, as buildx lists it in an index.
func (l *shapeLayout) attestation(image imgspecv1.Descriptor) imgspecv1.Descriptor {
	statement := l.blob("application/vnd.in-toto+json", []byte(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"digest":{"sha256":"`+image.Digest.Encoded()+`"}}]}`))
	config := l.json(imgspecv1.MediaTypeImageConfig, imgspecv1.Image{Platform: imgspecv1.Platform{OS: "unknown", Architecture: "unknown"},
		RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{statement.Digest}}})
	d := l.json(imgspecv1.MediaTypeImageManifest, imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageManifest, Config: config, Layers: []imgspecv1.Descriptor{statement}})
	d.Platform = &imgspecv1.Platform{OS: "unknown", Architecture: "unknown"}
	d.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": image.Digest.String()}
	return d
}

func (l *shapeLayout) index(entries ...imgspecv1.Descriptor) imgspecv1.Descriptor {
	return l.json(imgspecv1.MediaTypeImageIndex, imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageIndex, Manifests: entries})
}

// tag lists d in index.json under name and rewrites index.json.
func (l *shapeLayout) tag(name string, d imgspecv1.Descriptor) {
	l.t.Helper()
	d.Platform, d.Annotations = nil, map[string]string{imgspecv1.AnnotationRefName: name}
	l.tags = append(l.tags, d)
	b, err := json.Marshal(imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: l.tags})
	if err != nil {
		l.t.Fatal(err)
	}
	l.write("index.json", b)
}

// TestCLIShapesBuildxAttestations: a buildx index lists an attestation manifest (platform
// unknown/unknown) per image, here before the images. list-tags shows only the
// images' platforms, asking for unknown/unknown finds nothing, --all keeps the attestations
// byte for byte and --platform those of the images it keeps.
func TestCLIShapesBuildxAttestations(t *testing.T) {
	t.Parallel()
	l := newShapeLayout(t)
	amd, arm := l.image("amd64"), l.image("arm64")
	idx := l.index(l.attestation(arm), l.attestation(amd), arm, amd)
	l.tag("latest", idx)

	var listing struct {
		Images []struct{ Platforms []string }
	}
	res := mustCLI(t, "list-tags", "oci:"+l.dir)
	if err := json.Unmarshal([]byte(res.stdout), &listing); err != nil || len(listing.Images) != 1 ||
		strings.Join(listing.Images[0].Platforms, " ") != "linux/arm64 linux/amd64" {
		t.Errorf("list-tags of the layout lists %s (%v); want the platforms linux/arm64 linux/amd64 only", res.stdout, err)
	}
	if res := cli(t, "--override-os", "unknown", "--override-arch", "unknown", "inspect", "oci:"+l.dir+":latest"); res.code != 3 {
		t.Errorf("inspect for unknown/unknown: exit %d, %s%s; want 3 (no image)", res.code, res.stdout, res.stderr)
	}
	out := filepath.Join(t.TempDir(), "all.tar")
	mustCLI(t, "-q", "--all", "oci:"+l.dir+":latest", "oci-archive:"+out+":latest")
	raw := mustCLI(t, "inspect", "--raw", "oci-archive:"+out+":latest").stdout
	if digest.FromString(raw) != idx.Digest {
		t.Errorf("--all wrote index %s, want %s unchanged", digest.FromString(raw), idx.Digest)
	}

	// --platform keeps the chosen images' attestations and drops the others'.
	mustCLI(t, "-q", "--platform", "linux/arm64", "oci:"+l.dir+":latest", "oci-archive:"+out+":arm64")
	var written imgspecv1.Index
	if err := json.Unmarshal([]byte(mustCLI(t, "inspect", "--raw", "oci-archive:"+out+":arm64").stdout), &written); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range written.Manifests {
		got = append(got, m.Platform.Architecture+"="+m.Annotations["vnd.docker.reference.digest"])
	}
	if want := "unknown=" + arm.Digest.String() + " arm64="; strings.Join(got, " ") != want {
		t.Errorf("--platform linux/arm64 wrote the entries %v, want %s", got, want)
	}
}

// TestCLIShapesArtifactToDockerArchive: a Helm chart copies byte-exact to an OCI archive, and
// a docker-archive, which `docker load` reads, refuses it (exit 2) without creating the file.
func TestCLIShapesArtifactToDockerArchive(t *testing.T) {
	t.Parallel()
	l := newShapeLayout(t)
	config := l.json("application/vnd.cncf.helm.config.v1+json", map[string]string{"name": "chart", "version": "0.1.0"})
	chart := l.blob("application/vnd.cncf.helm.chart.content.v1.tar+gzip", []byte("not even a tarball"))
	helm := l.json(imgspecv1.MediaTypeImageManifest, imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageManifest, Config: config, Layers: []imgspecv1.Descriptor{chart}})
	l.tag("0.1.0", helm)

	tmp := t.TempDir()
	mustCLI(t, "-q", "oci:"+l.dir+":0.1.0", "oci-archive:"+filepath.Join(tmp, "chart.tar")+":0.1.0")
	if raw := mustCLI(t, "inspect", "--raw", "oci-archive:"+filepath.Join(tmp, "chart.tar")+":0.1.0").stdout; digest.FromString(raw) != helm.Digest {
		t.Errorf("oci-archive holds %s, want %s", digest.FromString(raw), helm.Digest)
	}
	mustCLI(t, "verify", "-q", "oci-archive:"+filepath.Join(tmp, "chart.tar"))
	res := cli(t, "-q", "oci:"+l.dir+":0.1.0", "docker-archive:"+filepath.Join(tmp, "chart-docker.tar")+":chart:0.1.0")
	if res.code != 2 || !strings.Contains(res.stderr, "a docker-archive holds only container images") {
		t.Errorf("helm chart to docker-archive: exit %d, %s; want 2 and the reason", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(tmp, "chart-docker.tar")); !os.IsNotExist(err) {
		t.Errorf("the refused docker-archive exists: %v", err)
	}
}

// TestCLIShapesNestedIndex: the image for a platform is found in an index listed by the
// index (entries without a platform), by inspect and by a single-platform copy; a
// docker-archive holds the nested indexes byte for byte.
func TestCLIShapesNestedIndex(t *testing.T) {
	t.Parallel()
	l := newShapeLayout(t)
	amd, arm := l.image("amd64"), l.image("arm64")
	top := l.index(l.index(amd), l.index(l.index(arm)))
	l.tag("latest", top)
	l.tag("single", amd)

	res := mustCLI(t, "--override-arch", "arm64", "inspect", "--format", "{{.Architecture}}", "oci:"+l.dir+":latest")
	if strings.TrimSpace(res.stdout) != "arm64" {
		t.Errorf("inspect printed %q, want arm64", res.stdout)
	}
	dir := filepath.Join(t.TempDir(), "arm")
	mustCLI(t, "-q", "--override-arch", "arm64", "--multi-arch", "system", "oci:"+l.dir+":latest", "dir:"+dir)
	if b, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err != nil || digest.FromBytes(b) != arm.Digest {
		t.Errorf("copied %v (%v), want the arm64 image %s", digest.FromBytes(b), err, arm.Digest)
	}

	// A docker-archive stores the nested indexes whole, and keeps them when an image is added.
	archive := filepath.Join(t.TempDir(), "nested.tar")
	mustCLI(t, "-q", "--all", "oci:"+l.dir+":latest", "docker-archive:"+archive+":app:nested")
	mustCLI(t, "-q", "oci:"+l.dir+":single", "docker-archive:"+archive+":app:single")
	if raw := mustCLI(t, "inspect", "--raw", "docker-archive:"+archive+":app:nested").stdout; digest.FromString(raw) != top.Digest {
		t.Errorf("the docker-archive holds %s, want the nested index %s", digest.FromString(raw), top.Digest)
	}
	mustCLI(t, "verify", "-q", "docker-archive:"+archive)
}
