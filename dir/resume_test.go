//go:build unix

package dir

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

// TestResumeTakesOnlyReusedBlobs: the blobs a killed writer had staged are reused by the next
// copy into the directory (reported as kept), and those the new image does not use are not
// published with it.
func TestResumeTakesOnlyReusedBlobs(t *testing.T) {
	t.Parallel()
	img := buildImage(t, "amd64", 2)
	path := filepath.Join(t.TempDir(), "img")
	dead := filepath.Join(path, staging.LayoutPrefix+"dead") // its .lock file is not held: a dead writer's
	stray := []byte("a blob of another image")
	files := map[string][]byte{".lock": nil, img.Layers[0].Digest.Encoded(): img.Layers[0].Data, digest.FromBytes(stray).Encoded(): stray}
	if err := os.MkdirAll(dead, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dead, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	dest, err := mustRef(t, path).NewImageDestination(ctx, &types.SystemContext{Resume: &types.ResumeOptions{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	l := img.Layers[0]
	reused, ok, err := dest.TryReusingBlob(ctx, types.BlobInfo{Digest: l.Digest, Size: int64(len(l.Data))}, types.ReuseOptions{})
	if err != nil || !ok || !reused.Kept {
		t.Fatalf("TryReusingBlob of the staged layer = %+v, %v, %v; want it reused and kept", reused, ok, err)
	}
	putBlobs(t, dest, img)
	if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, path)
	if _, ok := got[l.Digest.Encoded()]; !ok {
		t.Errorf("the reused layer is missing: %v", names(got))
	}
	if _, ok := got[digest.FromBytes(stray).Encoded()]; ok {
		t.Errorf("a staged blob the image does not use was published: %v", names(got))
	}
	if left, _ := filepath.Glob(filepath.Join(path, staging.LayoutPrefix+"*")); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
}
