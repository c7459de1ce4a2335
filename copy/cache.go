package copy

import (
	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/types"
)

// newDefaultCache is the cache of a copy whose Options.BlobInfoCache is nil: a fresh
// in-memory one, so facts learnt during the copy (uncompressed digests) are still used.
func newDefaultCache() types.BlobInfoCache { return memory.New() }
