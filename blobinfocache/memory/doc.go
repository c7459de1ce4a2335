// Package memory is an in-process types.BlobInfoCache, the library default. What it learns
// lives as long as the cache value; its size is bounded, oldest records pruned first.
//
// copy.Image uses a fresh one when copy.Options.BlobInfoCache is nil; keep one New() value
// and pass it to every copy of a program to share what the copies learn. New,
// NewWithLimits and Limits are stable; the Default* bounds may change.
package memory
