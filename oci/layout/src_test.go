package layout

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// handLayout builds a layout file by file, for inputs our own writer never produces.
type handLayout struct {
	t   *testing.T
	dir string
}

func newHandLayout(t *testing.T) *handLayout {
	t.Helper()
	l := &handLayout{t: t, dir: filepath.Join(t.TempDir(), "layout")}
	l.write(LayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return l
}

func (l *handLayout) write(name string, data []byte) {
	l.t.Helper()
	p := filepath.Join(l.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// blob stores data under its digest and returns a descriptor for it.
func (l *handLayout) blob(mediaType string, data []byte) imgspecv1.Descriptor {
	d := digest.FromBytes(data)
	l.write("blobs/sha256/"+d.Encoded(), data)
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// image stores every blob of img and returns the manifest's descriptor.
func (l *handLayout) image(img conformance.Image) imgspecv1.Descriptor {
	for _, b := range img.Blobs() {
		l.blob(b.MediaType, b.Data)
	}
	return l.blob(img.MIMEType, img.Manifest)
}

func (l *handLayout) index(descs ...imgspecv1.Descriptor) {
	l.t.Helper()
	b, err := json.Marshal(imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: descs})
	if err != nil {
		l.t.Fatal(err)
	}
	l.write(IndexFile, b)
}

func named(desc imgspecv1.Descriptor, ann ...string) imgspecv1.Descriptor {
	desc.Annotations = map[string]string{}
	for i := 0; i+1 < len(ann); i += 2 {
		desc.Annotations[ann[i]] = ann[i+1]
	}
	return desc
}

func testImage(t *testing.T, mimeType, arch string) conformance.Image {
	t.Helper()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: mimeType, Architecture: arch, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func openSource(t *testing.T, ref string) (types.ImageSource, error) {
	t.Helper()
	r, err := Transport.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	src, err := r.NewImageSource(context.Background(), nil)
	if err == nil {
		t.Cleanup(func() { src.Close() })
	}
	return src, err
}

func topDigest(t *testing.T, src types.ImageSource) digest.Digest {
	t.Helper()
	b, _, err := src.GetManifest(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(b)
}

// TestSelectImage covers choosing an image by bare tag, full reference, containerd's name
// annotation, digest, and the only-image default.
func TestSelectImage(t *testing.T) {
	t.Parallel()
	l := newHandLayout(t)
	amd := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "amd64"))
	arm := l.image(testImage(t, manifest.DockerV2Schema2MediaType, "arm64"))
	s390 := l.image(testImage(t, imgspecv1.MediaTypeImageManifest, "s390x"))
	l.index(
		named(amd, imgspecv1.AnnotationRefName, "v1"),
		named(arm, imgspecv1.AnnotationRefName, "docker.io/library/busybox:latest"),
		named(s390, imgspecv1.AnnotationRefName, "stable", containerdNameAnnotation, "example.com/app:stable"),
	)
	for _, tc := range []struct {
		ref     string
		want    digest.Digest
		wantErr string
		notFnd  bool
		usage   bool // the reference must be changed: exit code 2
	}{
		{ref: ":v1", want: amd.Digest},
		{ref: ":latest", want: arm.Digest},
		{ref: ":docker.io/library/busybox:latest", want: arm.Digest},
		{ref: ":stable", want: s390.Digest},
		{ref: ":example.com/app:stable", want: s390.Digest},
		{ref: "@" + arm.Digest.String(), want: arm.Digest},
		{ref: ":v2", wantErr: `no image named "v2"`, notFnd: true},
		{ref: "@" + digest.FromString("x").String(), wantErr: "no image with digest", notFnd: true},
		{ref: "", wantErr: "holds 3 images, choose one with PATH:NAME or PATH@DIGEST: docker.io", usage: true},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			src, err := openSource(t, l.dir+tc.ref)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
				}
				if tc.notFnd != errors.Is(err, types.ErrManifestNotFound) {
					t.Errorf("errors.Is(ErrManifestNotFound) = %v for %v", !tc.notFnd, err)
				}
				if tc.usage != (types.Classify(err) == types.ClassUsage) {
					t.Errorf("class %v for %v, want usage: %v", types.Classify(err), err, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := topDigest(t, src); got != tc.want {
				t.Errorf("selected %s, want %s", got, tc.want)
			}
		})
	}
	_, err := openSource(t, l.dir)
	if err == nil || !strings.Contains(err.Error(), "docker.io/library/busybox:latest, stable, v1") {
		t.Errorf("error for several images should list the names: %v", err)
	}
}

// TestDockerMediaTypesAndNesting reads a Docker manifest list nested in an OCI index nested
// in index.json, as multi-level layouts from other tools are.
func TestDockerMediaTypesAndNesting(t *testing.T) {
	t.Parallel()
	l := newHandLayout(t)
	idx, err := conformance.BuildIndex(manifest.DockerV2ListMediaType, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range idx.Instances {
		l.image(inst)
	}
	list := l.blob(manifest.DockerV2ListMediaType, idx.Manifest)
	outer, _ := json.Marshal(imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{list}})
	top := l.blob(imgspecv1.MediaTypeImageIndex, outer)
	l.index(named(top, imgspecv1.AnnotationRefName, "multi"))
	src, err := openSource(t, l.dir+":multi")
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range idx.Instances {
		d := inst.Digest
		b, mt, err := src.GetManifest(context.Background(), &d)
		if err != nil {
			t.Fatalf("GetManifest(%s): %v", d, err)
		}
		if !bytes.Equal(b, inst.Manifest) || mt != manifest.DockerV2Schema2MediaType {
			t.Errorf("instance %s: type %q, bytes equal %v", d, mt, bytes.Equal(b, inst.Manifest))
		}
	}
	b, mt, err := src.GetManifest(context.Background(), &list.Digest)
	if err != nil || !bytes.Equal(b, idx.Manifest) || mt != manifest.DockerV2ListMediaType {
		t.Errorf("nested list: %q %v", mt, err)
	}
}

// TestHostileLayouts checks that malformed or malicious layouts fail with an error naming
// the file and the problem, and that nothing outside the layout is read.
func TestHostileLayouts(t *testing.T) {
	t.Parallel()
	img := testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, img.Manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	type op int
	const (
		openImage op = iota
		getBlob
	)
	for _, tc := range []struct {
		name    string
		setup   func(l *handLayout)
		op      op
		is      error
		message string
	}{
		{name: "unknown layout version", is: ErrInvalidLayout, message: `unsupported imageLayoutVersion "2.0.0"`,
			setup: func(l *handLayout) { l.write(LayoutFile, []byte(`{"imageLayoutVersion":"2.0.0"}`)) }},
		{name: "missing oci-layout", is: ErrInvalidLayout, message: "missing oci-layout file",
			setup: func(l *handLayout) { os.Remove(filepath.Join(l.dir, LayoutFile)) }},
		{name: "oci-layout not JSON", is: ErrInvalidLayout, message: "oci-layout in",
			setup: func(l *handLayout) { l.write(LayoutFile, []byte(`1.0.0`)) }},
		{name: "missing index.json", is: ErrInvalidLayout, message: "missing index.json file",
			setup: func(l *handLayout) { os.Remove(filepath.Join(l.dir, IndexFile)) }},
		{name: "index.json not JSON", is: ErrInvalidLayout, message: "index.json in",
			setup: func(l *handLayout) { l.write(IndexFile, []byte(`{"manifests": [`)) }},
		{name: "index.json too large", is: iolimits.ErrTooLarge, message: "reading index.json",
			setup: func(l *handLayout) { l.write(IndexFile, bytes.Repeat([]byte(" "), iolimits.MaxIndexFileSize+1)) }},
		{name: "index.json schemaVersion 1", is: ErrInvalidLayout, message: "schemaVersion 1",
			setup: func(l *handLayout) { l.write(IndexFile, []byte(`{"schemaVersion":1,"manifests":[]}`)) }},
		{name: "digest too short", is: ErrInvalidLayout, message: `manifests[0]: invalid digest "sha256:1234"`,
			setup: func(l *handLayout) { l.index(imgspecv1.Descriptor{Digest: "sha256:1234", Size: 1}) }},
		{name: "unknown algorithm", is: ErrInvalidLayout, message: `invalid digest "md5:d41d8cd98f00b204e9800998ecf8427e"`,
			setup: func(l *handLayout) {
				l.index(imgspecv1.Descriptor{Digest: "md5:d41d8cd98f00b204e9800998ecf8427e", Size: 1})
			}},
		{name: "path traversal in digest", is: ErrInvalidLayout, message: "invalid digest",
			setup: func(l *handLayout) {
				l.index(imgspecv1.Descriptor{Digest: digest.Digest("sha256:../../../../" + strings.Repeat("a", 52)), Size: 1})
			}},
		{name: "negative size", is: ErrInvalidLayout, message: "negative size",
			setup: func(l *handLayout) { l.index(imgspecv1.Descriptor{Digest: img.Digest, Size: -5}) }},
		{name: "manifest content does not match its name", is: types.ErrDigestMismatch, message: "blobs/sha256/" + img.Digest.Encoded() + " does not match its descriptor",
			setup: func(l *handLayout) {
				l.write("blobs/sha256/"+img.Digest.Encoded(), append([]byte(" "), img.Manifest[1:]...))
				l.index(imgspecv1.Descriptor{MediaType: img.MIMEType, Digest: img.Digest, Size: int64(len(img.Manifest))})
			}},
		{name: "manifest size does not match descriptor", is: types.ErrDigestMismatch, message: "does not match its descriptor",
			setup: func(l *handLayout) {
				desc := l.image(img)
				desc.Size++
				l.index(desc)
			}},
		{name: "index nests into itself", is: types.ErrDigestMismatch, message: "does not match its descriptor",
			setup: func(l *handLayout) {
				self := digest.FromString("self")
				b, _ := json.Marshal(imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
					Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageIndex, Digest: self, Size: 100}}})
				l.write("blobs/sha256/"+self.Encoded(), b)
				l.index(imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageIndex, Digest: self, Size: int64(len(b))})
			}},
		{name: "manifest symlink escaping the layout", message: "escapes",
			setup: func(l *handLayout) {
				p := filepath.Join(l.dir, "blobs/sha256", img.Digest.Encoded())
				os.Remove(p)
				if err := os.Symlink(outside, p); err != nil {
					l.t.Fatal(err)
				}
				l.index(imgspecv1.Descriptor{MediaType: img.MIMEType, Digest: img.Digest, Size: int64(len(img.Manifest))})
			}},
		{name: "blobs directory symlink escaping the layout", op: getBlob, message: "escapes",
			setup: func(l *handLayout) {
				desc := l.image(img)
				l.index(desc)
				// The manifest stays readable through blobs/sha256; a second algorithm dir escapes.
				if err := os.Symlink(filepath.Dir(outside), filepath.Join(l.dir, "blobs", "sha512")); err != nil {
					l.t.Fatal(err)
				}
			}},
		{name: "blob is a directory", op: getBlob, is: ErrInvalidLayout, message: "is not a regular file",
			setup: func(l *handLayout) {
				l.index(l.image(img))
				os.MkdirAll(filepath.Join(l.dir, "blobs", "sha512", strings.Repeat("ab", 64)), 0o755)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newHandLayout(t)
			l.index(l.image(img))
			tc.setup(l)
			src, err := openSource(t, l.dir)
			if tc.op == getBlob {
				if err != nil {
					t.Fatal(err)
				}
				var rc io.ReadCloser
				rc, _, err = src.GetBlob(context.Background(), types.BlobInfo{Digest: digest.Digest("sha512:" + strings.Repeat("ab", 64)), Size: -1}, types.GetBlobOptions{})
				if err == nil {
					rc.Close()
				}
			}
			if err == nil {
				t.Fatal("hostile layout accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("want errors.Is(%v), got %v", tc.is, err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
			if tc.op == openImage && !strings.Contains(err.Error(), l.dir) {
				t.Errorf("error %q does not name the layout", err)
			}
		})
	}
}

// TestWalkGuards exercises the nesting guards directly: with verified digests a real cycle
// cannot be built on disk, so the guard is defence in depth.
func TestWalkGuards(t *testing.T) {
	t.Parallel()
	l := newHandLayout(t)
	desc := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageIndex, Digest: digest.FromString("x"), Size: 1}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	visit := func(imgspecv1.Descriptor) error { return nil }
	err = walk(root.FS(), desc, l.dir, []digest.Digest{digest.FromString("y"), desc.Digest}, visit)
	if !errors.Is(err, ErrInvalidLayout) || !strings.Contains(err.Error(), "nests into itself") {
		t.Errorf("cycle: %v", err)
	}
	deep := make([]digest.Digest, maxIndexDepth+1)
	for i := range deep {
		deep[i] = digest.FromString(string(rune('a' + i)))
	}
	err = walk(root.FS(), desc, l.dir, deep, visit)
	if !errors.Is(err, ErrInvalidLayout) || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("depth: %v", err)
	}
}

// FuzzParseIndex feeds arbitrary index.json content to the parser and to image selection.
func FuzzParseIndex(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/index-*.json")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "latest")
	}
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:`+testHex+`","size":1,"annotations":{"org.opencontainers.image.ref.name":"a:latest"}}]}`), "latest")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		idx, err := ParseIndex(b, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalidLayout) {
				t.Fatalf("error without ErrInvalidLayout: %v", err)
			}
			return
		}
		for _, desc := range idx.Manifests {
			if _, err := BlobPath(desc.Digest); err != nil {
				t.Fatalf("accepted descriptor without a blob path: %v", err)
			}
		}
		selectImage(idx, name, "", "fuzz")
		UpdateIndex(idx, imgspecv1.Descriptor{Digest: digest.FromString("x")}, name)
	})
}
