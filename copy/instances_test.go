package copy

import (
	"context"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
)

// TestCopyIndexInstancesSideBySide: the instances of an index are copied concurrently. Each
// instance's own layer is held at the source until the layers of all three instances are
// being read, which never happens when instances are copied one after another.
func TestCopyIndexInstancesSideBySide(t *testing.T) {
	t.Parallel()
	src, imgs, _ := newIndexSource(t, manifest.DockerV2ListMediaType, "amd64", "arm64", "s390x")
	own := map[digest.Digest]bool{}
	for _, img := range imgs {
		own[img.layers[1].digest()] = true
	}
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	src.src.gate = func(ctx context.Context, d digest.Digest) error {
		if !own[d] {
			return nil
		}
		mu.Lock()
		if arrived++; arrived == len(own) {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second): // a bound on the test, not a timing assumption
			return errors.Errorf("layer %s: the other instances' layers were never requested", d)
		}
	}
	dest := newFakeRef("dest", newMemStore())
	res := mustCopy(t, dest, src, nil)
	if len(res.Instances) != 3 {
		t.Fatalf("%d instances copied", len(res.Instances))
	}
	for i, inst := range res.Instances { // the written index and the results keep the source's order
		if inst.SourceDigest != imgs[i].digest {
			t.Errorf("instance %d is %s, want %s", i, inst.SourceDigest, imgs[i].digest)
		}
	}
}
