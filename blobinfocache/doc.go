// Package blobinfocache holds the implementations of types.BlobInfoCache: package memory (the
// library default, per process) and package boltdb (a persistent file shared between processes,
// the CLI default). Transports and the copy engine only see the types.BlobInfoCache interface.
//
// A blob-info cache remembers what copies learnt about blobs: the uncompressed digest of a
// compressed layer, the compressor of a digest, and where (which registry repository) a blob
// was seen. Copies use it to skip work (a decompression, an upload replaced by a
// cross-repository mount); a missing, stale or broken cache costs speed, never correctness.
//
// # Getting started
//
// Pass a cache in copy.Options.BlobInfoCache; nil gives each copy a fresh in-memory one.
// Programs that copy repeatedly (or share work between processes, as the CLI does) open one
// file with boltdb.Open(path) and pass it to every copy. A cache of your own (shared over the
// network, say) implements types.BlobInfoCache, whose methods return no errors: a cache
// that cannot answer says it knows nothing.
//
// # Stability
//
// memory.New, memory.NewWithLimits with Limits, boltdb.Open and boltdb.DefaultPath are
// stable. The Default* bounds are defaults, and their values may change. The boltdb file
// format is private: a file this version cannot use is given up with a warning and the
// cache carries on in memory, never failing a copy.
package blobinfocache
