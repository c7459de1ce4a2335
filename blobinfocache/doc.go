// Package blobinfocache holds the implementations of types.BlobInfoCache: package memory (the
// library default, per process) and package boltdb (a persistent file shared between processes,
// the CLI default). Transports and the copy engine only see the types.BlobInfoCache interface.
package blobinfocache
