// Package boltdb is a persistent types.BlobInfoCache in a go.etcd.io/bbolt file, the CLI
// default. Like containers/image it opens the file for each operation and closes it right
// after, so several processes can share one file; a file that cannot be used (corrupt, locked
// for too long, unwritable) is reported once with a warning and the cache carries on in memory.
//
// Records are written behind: they are kept in the handle and stored together in one
// transaction (one fsync instead of two per record) when Flush is called, when
// DefaultMaxPending of them are waiting, or DefaultFlushDelay after the first of them.
// Reads through the same handle see them at once; other handles and processes see them once
// stored. copy.Image calls Flush before it returns.
//
// Start with Open(path), or Open of DefaultPath() to share the CLI's file, and pass the
// cache in copy.Options.BlobInfoCache; the copy package's examples show it. Open, DefaultPath
// and the Flush method are stable; the bounds (Default*) may change, and the file format is
// private (see package blobinfocache).
package boltdb
