package dir

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// writeSkopeoDir writes the files skopeo writes for img, by hand.
func writeSkopeoDir(t *testing.T, path string, img conformance.Image, extra map[string]string) {
	t.Helper()
	files := map[string][]byte{"version": []byte(version), "manifest.json": img.Manifest, "signature-1": []byte("ignored")}
	for _, b := range img.Blobs() {
		files[b.Digest.Encoded()] = b.Data
	}
	for n, c := range extra {
		files[n] = []byte(c)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(path, n), c, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadSkopeoDir(t *testing.T) {
	t.Parallel()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: manifest.DockerV2Schema2MediaType})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "img")
	writeSkopeoDir(t, path, img, nil)
	src, err := mustRef(t, path).NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, mt, err := src.GetManifest(context.Background(), nil)
	if err != nil || !bytes.Equal(m, img.Manifest) || mt != manifest.DockerV2Schema2MediaType {
		t.Fatalf("GetManifest: %q %v", mt, err)
	}
	rc, size, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: img.Layers[1].Digest, Size: -1}, types.GetBlobOptions{})
	if err != nil || size != int64(len(img.Layers[1].Data)) {
		t.Fatalf("GetBlob: %d %v", size, err)
	}
	rc.Close()
}

// TestHostileDirs checks that malformed or malicious directories fail with a clear error.
func TestHostileDirs(t *testing.T) {
	t.Parallel()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o644)
	wrongInstance := digest.FromString("instance")
	for _, tc := range []struct {
		name    string
		setup   func(path string)
		read    func(src types.ImageSource) error
		is      error
		message string
	}{
		{name: "unknown version", is: nil, message: `unsupported directory transport version "Directory Transport Version: 2.0"`,
			setup: func(p string) {
				os.WriteFile(filepath.Join(p, "version"), []byte("Directory Transport Version: 2.0\n"), 0o644)
			}},
		{name: "blob symlink escaping", message: "escapes",
			setup: func(p string) {
				f := filepath.Join(p, img.Layers[0].Digest.Encoded())
				os.Remove(f)
				os.Symlink(outside, f)
			},
			read: func(src types.ImageSource) error {
				_, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: img.Layers[0].Digest, Size: -1}, types.GetBlobOptions{})
				return err
			}},
		{name: "manifest symlink escaping", message: "escapes",
			setup: func(p string) {
				os.Remove(filepath.Join(p, "manifest.json"))
				os.Symlink(outside, filepath.Join(p, "manifest.json"))
			},
			read: func(src types.ImageSource) error { _, _, err := src.GetManifest(context.Background(), nil); return err }},
		{name: "invalid blob digest", message: "invalid digest",
			read: func(src types.ImageSource) error {
				_, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: "sha256:../../etc/passwd", Size: -1}, types.GetBlobOptions{})
				return err
			}},
		{name: "unknown algorithm", message: "unsupported digest algorithm",
			read: func(src types.ImageSource) error {
				_, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: "md5:d41d8cd98f00b204e9800998ecf8427e", Size: -1}, types.GetBlobOptions{})
				return err
			}},
		{name: "instance manifest does not match its name", is: types.ErrDigestMismatch, message: wrongInstance.Encoded() + ".manifest.json does not match its name",
			setup: func(p string) {
				os.WriteFile(filepath.Join(p, wrongInstance.Encoded()+".manifest.json"), img.Manifest, 0o644)
			},
			read: func(src types.ImageSource) error {
				_, _, err := src.GetManifest(context.Background(), &wrongInstance)
				return err
			}},
		{name: "manifest too large", is: iolimits.ErrTooLarge, message: "manifest.json",
			setup: func(p string) {
				os.WriteFile(filepath.Join(p, "manifest.json"), bytes.Repeat([]byte(" "), iolimits.MaxManifestBodySize+1), 0o644)
			},
			read: func(src types.ImageSource) error { _, _, err := src.GetManifest(context.Background(), nil); return err }},
		{name: "blob is a directory", message: "is not a regular file",
			setup: func(p string) { os.Mkdir(filepath.Join(p, strings.Repeat("a", 64)), 0o755) },
			read: func(src types.ImageSource) error {
				_, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Size: -1}, types.GetBlobOptions{})
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "img")
			writeSkopeoDir(t, path, img, nil)
			if tc.setup != nil {
				tc.setup(path)
			}
			src, err := mustRef(t, path).NewImageSource(context.Background(), nil)
			if err == nil {
				defer src.Close()
				if tc.read == nil {
					t.Fatal("hostile directory opened")
				}
				err = tc.read(src)
			}
			if err == nil {
				t.Fatal("hostile input accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("want errors.Is(%v), got %v", tc.is, err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
		})
	}
}

func TestMissingDir(t *testing.T) {
	t.Parallel()
	_, err := mustRef(t, filepath.Join(t.TempDir(), "nope")).NewImageSource(context.Background(), nil)
	if !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("want ErrManifestNotFound, got %v", err)
	}
}
