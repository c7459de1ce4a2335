// Package copy moves one image, or a whole multi-platform index, from any types.ImageSource
// to any types.ImageDestination. Importers alias it (`copier`), because the package name
// shadows the builtin.
//
// # Getting started
//
// Parse two names with a transport list and call Image; nil Options mean a byte-exact copy
// of the whole image with an in-memory blob-info cache:
//
//	src, err := alltransports.ParseImageName("docker://registry.example/app:1")
//	dest, err := alltransports.ParseImageName("oci:/srv/layout:app-1")
//	res, err := copier.Image(ctx, dest, src, nil)
//
// Options carry what the CLI's flags set: credentials and TLS per side (SourceCtx,
// DestinationCtx), the manifest format, which platforms of an index, compression, progress
// events (Progress) and a persistent blob-info cache (BlobInfoCache, see
// blobinfocache/boltdb). The examples show each.
//
// # How a copy works
//
// Image reads as a list of steps: open both ends, choose the instances to copy, plan the
// manifest, copy the config and the layers, write the manifest (trying the next candidate
// type when the destination rejects one), copy the related manifests when asked (referrers
// and digest tags, referrers.go), and commit. RelatedMissing (related_check.go) tells, from
// listings alone, whether that related step would add anything to an image the destination
// holds already, which a sync asks of every up-to-date image. Every decision (which manifest types
// to try, which instances to copy, what to do with a layer's compression, which index type to
// write) is a pure function from an inputs struct to a plan struct, in plan.go, so it can be
// table-tested without I/O.
//
// By default a copy is byte-exact: when the destination accepts the source's manifest type
// and no option asks for a change, the manifest bytes and every blob are copied unchanged and
// the digest is preserved. Every blob is verified while it streams (digest and size against
// its descriptor; when a layer is decompressed anyway, its uncompressed digest against the
// config's diff_ids), and the destination is committed only when everything succeeded.
//
// A blob streams through a chain of readers (buildChain; the readers are in chain.go): source
// GetBlob, a context check that stops a cancelled copy, an annotation that blames read
// failures on the source, the digest/size verifier, progress counting, optional decompression
// (hashing the diff ID), optional compression, and a recorder of the chain's first error, and
// finally the destination's PutBlob. Transforms run in goroutines joined by io.Pipe; every
// byte is read once.
//
// # Stability
//
// Image, RelatedMissing, Options, Result, InstanceResult, RelatedResult, MultiArch,
// ProgressEvent and its kinds, ManifestAttemptsError and DefaultParallelCopies are stable:
// Options and Result may gain fields (a zero Options field keeps today's behaviour) and new
// event kinds may be added, so a Progress callback must ignore kinds it does not know. Not covered: the lines
// written to ReportWriter, how often EventBlobProgress fires, log output, and which of
// several equally valid manifest types a conversion picks when the destination accepts more
// than one.
package copy
