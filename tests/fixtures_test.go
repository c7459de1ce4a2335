package tests

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// TestExamplesHelloIsRegenerated fails when examples/hello differs in any byte (or file) from
// what the generator produces now; fix with `go run ./tests/internal/fixtures/gen -out examples/hello`.
func TestExamplesHelloIsRegenerated(t *testing.T) {
	t.Parallel()
	want := fixtures.Hello()
	dir := filepath.Join("..", "examples", "hello")
	got := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range want.Paths() {
		if b, ok := got[p]; !ok {
			t.Errorf("examples/hello/%s is missing", p)
		} else if !bytes.Equal(b, want.Files[p]) {
			t.Errorf("examples/hello/%s differs from the generator's output", p)
		}
	}
	for p := range got {
		if _, ok := want.Files[p]; !ok {
			t.Errorf("examples/hello/%s is not produced by the generator", p)
		}
	}
	if t.Failed() {
		t.Log("regenerate with: go run ./tests/internal/fixtures/gen -out examples/hello")
	}
}

// TestFixtureLayoutsAreConsistent checks every variant's internal references: each blob is
// stored under its digest, descriptors carry the right sizes and diff_ids match the layers.
func TestFixtureLayoutsAreConsistent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts fixtures.Options
	}{
		{name: "hello", opts: fixtures.Options{}},
		{name: "docker media types", opts: fixtures.Options{DockerMediaTypes: true, RefName: "v1"}},
		{name: "multi-platform", opts: fixtures.Options{Platforms: []string{"linux/amd64", "linux/arm64/v8"}}},
		{name: "multi-platform docker", opts: fixtures.Options{DockerMediaTypes: true, Platforms: []string{"linux/amd64", "linux/arm/v7"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := fixtures.Build(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			again, err := fixtures.Build(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for p, b := range l.Files {
				if !bytes.Equal(b, again.Files[p]) {
					t.Errorf("%s is not deterministic", p)
				}
			}
			var index imgspecv1.Index
			if err := json.Unmarshal(l.Files["index.json"], &index); err != nil {
				t.Fatal(err)
			}
			if len(index.Manifests) != 1 || index.Manifests[0].Digest != l.ManifestDigest ||
				index.Manifests[0].Annotations[imgspecv1.AnnotationRefName] != l.RefName {
				t.Errorf("index.json does not name the top-level manifest: %s", l.Files["index.json"])
			}
			checkBlob(t, l, l.ManifestDigest, int64(len(l.Manifest)))
			for _, img := range l.Images {
				checkImage(t, l, img)
			}
		})
	}
}

func checkBlob(t *testing.T, l *fixtures.Layout, d digest.Digest, size int64) []byte {
	t.Helper()
	b, ok := l.Files["blobs/sha256/"+d.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing", d)
	}
	if digest.FromBytes(b) != d || int64(len(b)) != size {
		t.Fatalf("blob %s has digest %s and size %d, want size %d", d, digest.FromBytes(b), len(b), size)
	}
	return b
}

func checkImage(t *testing.T, l *fixtures.Layout, img fixtures.Image) {
	t.Helper()
	var m imgspecv1.Manifest
	if err := json.Unmarshal(checkBlob(t, l, img.ManifestDigest, int64(len(img.Manifest))), &m); err != nil {
		t.Fatal(err)
	}
	var config imgspecv1.Image
	if err := json.Unmarshal(checkBlob(t, l, m.Config.Digest, m.Config.Size), &config); err != nil {
		t.Fatal(err)
	}
	if config.OS != img.Platform.OS || config.Architecture != img.Platform.Architecture {
		t.Errorf("config platform %s/%s, want %s/%s", config.OS, config.Architecture, img.Platform.OS, img.Platform.Architecture)
	}
	if len(m.Layers) != 2 || len(config.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("want 2 layers and 2 diff_ids, got %d and %d", len(m.Layers), len(config.RootFS.DiffIDs))
	}
	for i, desc := range m.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(checkBlob(t, l, desc.Digest, desc.Size)))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if got := digest.FromBytes(raw); got != config.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: diff_id %s, config says %s", i, got, config.RootFS.DiffIDs[i])
		}
	}
}
