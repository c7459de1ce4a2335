package archive

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

// TestBlobsStreamIntoTheArchive: a blob of known size goes straight into the archive (no
// temporary blob file beside it, even while it streams), a blob failing meanwhile leaves no
// member under its name, and the finished archive reads back.
func TestBlobsStreamIntoTheArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "img.tar")
	ref := mustRef(t, path, "v1")
	img := testImage(t, "amd64")
	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()

	layer := img.Layers[0]
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := dest.PutBlob(ctx, pr, types.BlobInfo{Digest: layer.Digest, Size: int64(len(layer.Data))}, types.PutBlobOptions{})
		done <- err
	}()
	half := len(layer.Data) / 2
	if _, err := pw.Write(layer.Data[:half]); err != nil { // returns once PutBlob has read it
		t.Fatal(err)
	}
	for _, name := range dirEntries(t, dir) {
		if strings.HasPrefix(name, strings.TrimSuffix(staging.BlobPattern, "*")) {
			t.Errorf("blob spooled to %s instead of streaming into the archive", name)
		}
	}
	// Another blob, wrong for its digest, fails while the first is still streaming; it was
	// reserved after the first, so it is simply cut off.
	bad := digest.FromString("bad")
	if _, err := dest.PutBlob(ctx, strings.NewReader("not it"), types.BlobInfo{Digest: bad, Size: 6}, types.PutBlobOptions{}); !errors.Is(err, types.ErrDigestMismatch) {
		t.Fatalf("wrong blob: %v, want ErrDigestMismatch", err)
	}
	if _, err := pw.Write(layer.Data[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("streamed blob: %v", err)
	}
	if _, err := dest.PutBlob(ctx, bytes.NewReader(img.Config.Data), types.BlobInfo{Digest: img.Config.Digest, Size: int64(len(img.Config.Data))}, types.PutBlobOptions{IsConfig: true}); err != nil {
		t.Fatal(err)
	}
	if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	checkReadable(t, ref, img)
	for _, name := range members(t, path) {
		if strings.Contains(name, bad.Encoded()) || strings.Contains(name, "discarded") {
			t.Errorf("failed blob left member %s", name)
		}
	}
}
