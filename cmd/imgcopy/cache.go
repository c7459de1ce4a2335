package main

import (
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/blobinfocache/boltdb"
	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/types"
)

// openCache opens the persistent blob-info cache ($XDG_CACHE_HOME/imgcopy/blob-info-cache.db);
// without a usable home directory the copy gets an in-memory cache. The cache opens its file
// per operation, so there is nothing to close.
func openCache() types.BlobInfoCache {
	path, err := boltdb.DefaultPath()
	if err != nil {
		logrus.WithError(err).Warn("using an in-memory blob-info cache")
		return memory.New()
	}
	return boltdb.Open(path)
}
