package dir

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

func mustRef(t testing.TB, path string) types.ImageReference {
	t.Helper()
	ref, err := NewReference(path)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// snapshot returns every file under dir with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(b)
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

func names(files map[string]string) []string {
	var res []string
	for n := range files {
		res = append(res, n)
	}
	sort.Strings(res)
	return res
}

func writeImage(t *testing.T, ref types.ImageReference, img conformance.Image) {
	t.Helper()
	ctx := context.Background()
	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	putBlobs(t, dest, img)
	if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
}

func putBlobs(t *testing.T, dest types.ImageDestination, img conformance.Image) {
	t.Helper()
	for _, b := range img.Blobs() {
		if _, ok, _ := dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data))}, types.ReuseOptions{}); ok {
			continue
		}
		if _, err := dest.PutBlob(context.Background(), bytes.NewReader(b.Data), types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data))}, types.PutBlobOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func buildImage(t *testing.T, arch string, layers int) conformance.Image {
	t.Helper()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Architecture: arch, Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestSkopeoLayout checks the exact files skopeo writes for a single image and an index.
func TestSkopeoLayout(t *testing.T) {
	img := buildImage(t, "amd64", 2)
	path := filepath.Join(t.TempDir(), "img")
	writeImage(t, mustRef(t, path), img)
	files := snapshot(t, path)
	want := map[string]string{
		"version":       "Directory Transport Version: 1.1\n",
		"manifest.json": string(img.Manifest),
	}
	for _, b := range img.Blobs() {
		want[b.Digest.Encoded()] = string(b.Data)
	}
	if len(files) != len(want) {
		t.Errorf("files %v, want %v", names(files), names(want))
	}
	for n, c := range want {
		if files[n] != c {
			t.Errorf("file %s differs or is missing", n)
		}
	}
	fi, err := os.Stat(filepath.Join(path, img.Layers[0].Digest.Encoded()))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("blob file mode: %v %v", fi, err)
	}

	idx, err := conformance.BuildIndex(imgspecv1.MediaTypeImageIndex, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dest, err := mustRef(t, path).NewImageDestination(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	for _, inst := range idx.Instances {
		putBlobs(t, dest, inst)
		d := inst.Digest
		if err := dest.PutManifest(ctx, inst.Manifest, inst.MIMEType, &d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(ctx, idx.Manifest, idx.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	files = snapshot(t, path)
	want = map[string]string{"version": version, "manifest.json": string(idx.Manifest)}
	for _, inst := range idx.Instances {
		want[inst.Digest.Encoded()+".manifest.json"] = string(inst.Manifest)
		for _, b := range inst.Blobs() {
			want[b.Digest.Encoded()] = string(b.Data)
		}
	}
	if len(files) != len(want) {
		t.Errorf("after replacing with an index: files %v, want %v", names(files), names(want))
	}
	for n, c := range want {
		if files[n] != c {
			t.Errorf("file %s differs or is missing", n)
		}
	}
}

// TestAbortKeepsPreviousImage checks that failed writes over an existing image change nothing.
func TestAbortKeepsPreviousImage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "img")
	ref := mustRef(t, path)
	writeImage(t, ref, buildImage(t, "amd64", 2))
	before := snapshot(t, path)
	other := buildImage(t, "arm64", 3)
	ctx := context.Background()

	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	putBlobs(t, dest, other)
	if err := dest.PutManifest(ctx, other.Manifest, other.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	_, err = dest.PutBlob(ctx, bytes.NewReader([]byte("bad")), types.BlobInfo{Digest: digest.FromString("good"), Size: 3}, types.PutBlobOptions{})
	if !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("want ErrDigestMismatch, got %v", err)
	}
	if err := dest.Close(); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, path)
	if len(after) != len(before) {
		t.Fatalf("aborted write changed the files: %v -> %v", names(before), names(after))
	}
	for n, c := range before {
		if after[n] != c {
			t.Errorf("aborted write changed %s", n)
		}
	}
}

func TestRefuseForeignDirectory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
	}{
		{"unrelated file", map[string]string{"notes.txt": "keep me"}},
		{"other version", map[string]string{"version": "Directory Transport Version: 1.0\n", "manifest.json": "{}"}},
		{"version without newline", map[string]string{"version": "Directory Transport Version: 1.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir()
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(path, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := mustRef(t, path).NewImageDestination(context.Background(), nil)
			if !errors.Is(err, ErrNotImageDir) {
				t.Fatalf("want ErrNotImageDir, got %v", err)
			}
			if got := snapshot(t, path); len(got) != len(tc.files) {
				t.Errorf("directory changed: %v", names(got))
			}
		})
	}
}

func TestEmptyExistingDirectoryKept(t *testing.T) {
	path := t.TempDir()
	dest, err := mustRef(t, path).NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dest.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("an existing empty directory was removed: %v", err)
	}
}

func TestCommitWithoutManifest(t *testing.T) {
	dest, err := mustRef(t, filepath.Join(t.TempDir(), "x")).NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if err := dest.Commit(context.Background(), types.CommitOptions{}); err == nil {
		t.Fatal("Commit without a manifest succeeded")
	}
}
