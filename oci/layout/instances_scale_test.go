package layout

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// countingFS counts the manifest blobs opened through it.
type countingFS struct {
	fs.FS
	opens atomic.Int64
}

func (c *countingFS) Open(name string) (fs.File, error) {
	if strings.HasPrefix(name, "blobs/") {
		c.opens.Add(1)
	}
	return c.FS.Open(name)
}

// TestInstanceManifestsReadOnce: reading every instance of an index (what copying it does)
// opens each manifest about once, where a walk from the top per instance opened N²/2 (a
// 5,000-entry index took more than 15 minutes to copy). Instances of a nested index are found
// as well, and a digest outside the image is still ErrManifestNotFound.
func TestInstanceManifestsReadOnce(t *testing.T) {
	t.Parallel()
	const n = 60
	l := newHandLayout(t)
	config := l.blob(imgspecv1.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	var entries []imgspecv1.Descriptor
	for i := range n {
		m, err := json.Marshal(imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
			Config: config, Layers: []imgspecv1.Descriptor{}, Annotations: map[string]string{"n": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		d := l.blob(imgspecv1.MediaTypeImageManifest, m)
		d.Platform = &imgspecv1.Platform{OS: "linux", Architecture: "amd64", Variant: fmt.Sprint("v", i)}
		entries = append(entries, d)
	}
	nestedBody, err := json.Marshal(imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: entries[n/2:]})
	if err != nil {
		t.Fatal(err)
	}
	nested := l.blob(imgspecv1.MediaTypeImageIndex, nestedBody)
	topBody, err := json.Marshal(imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: append(append([]imgspecv1.Descriptor{}, entries[:n/2]...), nested)})
	if err != nil {
		t.Fatal(err)
	}
	l.index(named(l.blob(imgspecv1.MediaTypeImageIndex, topBody), imgspecv1.AnnotationRefName, "big"))

	fsys := &countingFS{FS: os.DirFS(l.dir)}
	ref, err := Transport.ParseReference(l.dir + ":big")
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewImageSourceFS(ref, fsys, l.dir, "big", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fsys.opens.Store(0)
	for _, e := range append(entries, nested) {
		d := e.Digest
		if _, _, err := src.GetManifest(context.Background(), &d); err != nil {
			t.Fatalf("GetManifest(%s): %v", d, err)
		}
	}
	if got, limit := fsys.opens.Load(), int64(3*n); got > limit {
		t.Errorf("reading %d instance manifests opened %d manifest files, want at most %d", n+1, got, limit)
	}
	missing := config.Digest
	if _, _, err := src.GetManifest(context.Background(), &missing); !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("GetManifest(config digest) = %v; want ErrManifestNotFound", err)
	}
}
