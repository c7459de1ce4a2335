package layout

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// hasManifest asks a fresh destination for name in dir whether it has dg.
func hasManifest(t *testing.T, dir, name string, dg digest.Digest) bool {
	t.Helper()
	dest, err := mustRef(t, dir, name).NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	has, err := dest.(types.ManifestChecker).HasManifest(context.Background(), dg)
	if err != nil {
		t.Fatalf("HasManifest(%s): %v", dg, err)
	}
	return has
}

func TestHasManifest(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	a := testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")
	b := testImage(t, imgspecv1.MediaTypeImageManifest, "arm64")
	if hasManifest(t, dir, "x", a.Digest) {
		t.Error("a new layout has a manifest")
	}
	mustWrite(t, mustRef(t, dir, "a"), a)
	mustWrite(t, mustRef(t, dir, "b"), b)
	cases := []struct {
		name   string
		dg     digest.Digest
		remove []digest.Digest // blob files removed first
		want   bool
	}{
		{name: "listed under another name", dg: a.Digest, want: true},
		{name: "not listed", dg: digest.FromString("other")},
		{name: "a blob, not a listed manifest", dg: a.Config.Digest},
		{name: "layer missing", dg: b.Digest, remove: []digest.Digest{b.Layers[0].Digest}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range tc.remove {
				if err := os.Remove(filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())); err != nil {
					t.Fatal(err)
				}
			}
			if got := hasManifest(t, dir, "new", tc.dg); got != tc.want {
				t.Errorf("HasManifest = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHasManifestIndex(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	idx, err := conformance.BuildIndex(imgspecv1.MediaTypeImageIndex, false)
	if err != nil {
		t.Fatal(err)
	}
	ref := mustRef(t, dir, "multi")
	for _, inst := range idx.Instances {
		mustWrite(t, ref, inst) // each replaces the previous one under the name; its blobs stay
	}
	dest, err := ref.NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dest.PutManifest(context.Background(), idx.Manifest, idx.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	dest.Close()
	if !hasManifest(t, dir, "other", idx.Digest) {
		t.Fatal("complete index not found")
	}
	last := idx.Instances[len(idx.Instances)-1]
	if err := os.Remove(filepath.Join(dir, "blobs", "sha256", last.Config.Digest.Encoded())); err != nil {
		t.Fatal(err)
	}
	if hasManifest(t, dir, "other", idx.Digest) {
		t.Error("index with a missing instance blob reported present")
	}
}

// TestWarnsOnceAboutDockerTypes checks the one warning given when Docker-typed images go into
// a layout unchanged (OCI-only tools such as umoci refuse them), however many, and none for
// OCI types.
func TestWarnsOnceAboutDockerTypes(t *testing.T) {
	hook := logtest.NewGlobal()
	out := logrus.StandardLogger().Out
	logrus.SetOutput(io.Discard)
	t.Cleanup(func() {
		logrus.SetOutput(out)
		logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
	})
	for _, tc := range []struct {
		mimeType string
		want     int
	}{{manifest.DockerV2Schema2MediaType, 1}, {imgspecv1.MediaTypeImageManifest, 0}} {
		hook.Reset()
		img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: tc.mimeType, Layers: 1})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		mustWrite(t, mustRef(t, dir, "x"), img)
		mustWrite(t, mustRef(t, dir, "y"), img) // a sync writes many images into one layout
		warned := 0
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "--format oci") {
				warned++
			}
		}
		if warned != tc.want {
			t.Errorf("%s: %d warnings, want %d", tc.mimeType, warned, tc.want)
		}
	}
}

// TestTryReusingBlobVariant: a blob asked for in another compression is answered with the
// variant the blob-info cache saw stored in this layout, only when substitution is allowed,
// in the required compression, and the variant's file is there.
func TestTryReusingBlobVariant(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	cache := memory.New()
	gz, zst, diffID := digest.FromString("gzip bytes"), []byte("zstd bytes"), digest.FromString("tar")
	zd := digest.FromBytes(zst)
	cache.RecordDigestUncompressedPair(gz, diffID)
	cache.RecordDigestUncompressedPair(zd, diffID)
	cache.RecordDigestCompressorName(gz, types.GzipCompressorName)
	cache.RecordDigestCompressorName(zd, types.ZstdCompressorName)
	dest, err := mustRef(t, dir, "a").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dest.PutBlob(context.Background(), bytes.NewReader(zst), types.BlobInfo{Digest: zd, Size: int64(len(zst))}, types.PutBlobOptions{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	zstdWanted := types.ReuseOptions{Cache: cache, CanSubstitute: true, OriginalCompression: types.GzipCompressorName, RequiredCompression: types.ZstdCompressorName}
	cases := []struct {
		name string
		opts types.ReuseOptions
		want digest.Digest // "" for not reused
	}{
		{"zstd required", zstdWanted, zd},
		{"no substitution", types.ReuseOptions{Cache: cache, OriginalCompression: types.GzipCompressorName, RequiredCompression: types.ZstdCompressorName}, ""},
		{"gzip required", types.ReuseOptions{Cache: cache, CanSubstitute: true, OriginalCompression: types.GzipCompressorName, RequiredCompression: types.GzipCompressorName}, ""},
		{"no cache", types.ReuseOptions{CanSubstitute: true, OriginalCompression: types.GzipCompressorName, RequiredCompression: types.ZstdCompressorName}, ""},
	}
	for _, tc := range cases {
		got, ok, err := dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: gz, Size: 10}, tc.opts)
		if err != nil || ok != (tc.want != "") || (ok && (got.Info.Digest != tc.want || got.Info.Size != int64(len(zst)))) {
			t.Errorf("%s: reused %v %+v (%v), want %q", tc.name, ok, got.Info, err, tc.want)
		}
	}
	dest.Close() // not committed: the staged variant is gone
	dest, err = mustRef(t, dir, "b").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if got, ok, err := dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: gz, Size: 10}, zstdWanted); ok || err != nil {
		t.Errorf("variant whose file is gone: reused %v %+v (%v)", ok, got.Info, err)
	}
}
