package copy

import (
	"fmt"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/types"
)

// flushCountingCache is a write-behind cache as far as the engine can tell.
type flushCountingCache struct {
	types.BlobInfoCache
	flushes atomic.Int32
}

var (
	_ types.BlobInfoCache        = (*flushCountingCache)(nil)
	_ types.BlobInfoCacheFlusher = (*flushCountingCache)(nil)
)

func (c *flushCountingCache) Flush() error {
	c.flushes.Add(1)
	return nil
}

func TestCopyFlushesWriteBehindCache(t *testing.T) {
	t.Parallel()
	layer := makeLayer(t, 1, 20<<10, "gzip")
	t.Run("after a copy", func(t *testing.T) {
		t.Parallel()
		src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
		cache := &flushCountingCache{BlobInfoCache: memory.New()}
		mustCopy(t, newFakeRef("dest", newMemStore()), src, &Options{BlobInfoCache: cache})
		if n := cache.flushes.Load(); n != 1 {
			t.Fatalf("%d flushes, want 1", n)
		}
	})
	t.Run("after a failed copy", func(t *testing.T) {
		t.Parallel()
		src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
		src.src.corrupt = map[digest.Digest]bool{layer.digest(): true}
		cache := &flushCountingCache{BlobInfoCache: memory.New()}
		expectFailure(t, newFakeRef("dest", newMemStore()), src, &Options{BlobInfoCache: cache})
		if n := cache.flushes.Load(); n != 1 {
			t.Fatalf("%d flushes, want 1", n)
		}
	})
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("deferred, failed %v", fail), func(t *testing.T) {
			t.Parallel()
			src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
			cache := &flushCountingCache{BlobInfoCache: memory.New()}
			opts := &Options{BlobInfoCache: cache, DeferCacheFlush: true}
			if fail {
				src.src.corrupt = map[digest.Digest]bool{layer.digest(): true}
				expectFailure(t, newFakeRef("dest", newMemStore()), src, opts)
			} else {
				mustCopy(t, newFakeRef("dest", newMemStore()), src, opts)
			}
			if n := cache.flushes.Load(); n != 0 {
				t.Fatalf("%d flushes with DeferCacheFlush, want none", n)
			}
		})
	}
}
