package copy

import (
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/types"
)

// newDefaultCache is the cache of a copy whose Options.BlobInfoCache is nil: a fresh
// in-memory one, so facts learnt during the copy (uncompressed digests) are still used.
func newDefaultCache() types.BlobInfoCache { return memory.New() }

// flushCache stores the records a write-behind cache still holds, so that they outlive the
// process even when it exits right after the copy. A failure is logged, never returned: the
// cache only ever costs speed.
func flushCache(cache types.BlobInfoCache) {
	if f, ok := cache.(types.BlobInfoCacheFlusher); ok {
		if err := f.Flush(); err != nil {
			logrus.WithError(err).Debug("flushing the blob-info cache")
		}
	}
}
