// Package types holds the interfaces and value types that every imgcopy package meets at:
// image references and transports, image sources and destinations, blob descriptors, the
// blob-info cache, the system context (credentials, TLS, platform choices) and the typed
// errors. It imports nothing from this module.
//
// # Getting started
//
// An image is named "TRANSPORT:REFERENCE". A TransportList (transports/alltransports.List
// returns the standard one) parses the name into an ImageReference, a value that touches
// nothing until NewImageSource or NewImageDestination opens the image. copy.Image copies,
// package inspect summarizes and package integrity checks; a program rarely calls a source
// or destination itself. To add a storage back end, implement ImageTransport,
// ImageReference, ImageSource and ImageDestination: docs/transports.md walks through it,
// examples/memtransport is a complete transport, and tests/conformance checks one.
//
// # The call order
//
// A copy always follows the same call order on a destination, written once here:
//
//  1. Properties, any number of times; then, when the destination implements ManifestChecker
//     and the top-level manifest would be written unchanged, HasManifest once. When it returns
//     true, steps 2 and the per-instance part of 3 are skipped.
//  2. For every blob (config and layers, in any order and, when Properties().ConcurrentBlobs
//     is true, concurrently): TryReusingBlob, then PutBlob if the blob was not reused (before
//     it, KeepsPartialBlob when the destination is a PartialBlobKeeper and the blob is
//     stored as it comes).
//  3. PutManifest for every per-instance manifest of a multi-platform image
//     (instance != nil), each after that instance's blobs, then PutManifest for the top-level
//     manifest (instance == nil). With ConcurrentBlobs on both ends, the instances of an index
//     are copied side by side, so one instance's blobs may be written after another's
//     manifest; GetManifest and PutManifest calls never overlap each other, except that a
//     source or destination whose Properties say ConcurrentManifests gets its calls as they
//     come.
//  4. Commit. (A copy that carries referrers and digest tags writes them between 3 and 4,
//     through the optional interfaces of referrers.go, which describes that part; a copy
//     that carries none tells a ManifestNamer so with NameOnPut, before step 1.)
//  5. Close, always, also after a failed or missing Commit. Nothing written by steps 2–3 may
//     become visible under a name (tag, index entry, archive path) before Commit succeeds.
//
// # Optional interfaces
//
// What not every transport can do is a small interface of its own, found with a type
// assertion:
//
//   - on references: ImageDeleter, TagLister, ImageLister, ManifestDigester (store.go),
//     TagDeleter (sync.go), LazySourceOpener (referrers.go) and ReferenceWarmer (warm.go);
//   - on transports: StoreTransport, whose StoreReferences may be StoreWriterOpeners;
//   - on destinations: ManifestChecker, ManifestNamer, RelatedDestination and
//     PartialBlobKeeper (resume.go);
//   - on sources and destinations: ReferrersLister and RelatedDigester; on sources
//     RelatedSource; on the streams GetBlob returns, ResumedReader (resume.go);
//   - on blob-info caches: BlobInfoCacheFlusher, BlobLocationForgetter and
//     ManifestMappingCache (sync.go).
//
// SystemContext carries what a registry transport honours on behalf of many copies: a
// RequestLimiter shared by a sync's copies (sync.go) and ResumeOptions for keeping and
// continuing interrupted transfers (resume.go). A wrapper around a transport object must
// forward every optional interface of what it wraps.
//
// # Errors
//
// Failures wrap the sentinels of errors.go (ErrBlobNotFound, ErrManifestNotFound,
// ErrDigestMismatch, ErrUsage, ...): test them with errors.Is. Classify sorts any error into
// an ErrorClass (not found, auth, verification, network, ...), which the CLI turns into its
// exit code; a transport classifies an error the sentinels do not cover by implementing
// ClassedError.
//
// # Logging
//
// The library packages log only through the package-level functions of
// github.com/sirupsen/logrus, that is logrus's standard logger: Debug for protocol detail
// and decisions, Warn when they carry on in a degraded way (a cache file that cannot be used,
// a refused mount). They never set its level, formatter or output, never log at Info or
// Error (a failure is returned instead) and never write to standard output themselves; a
// credential helper they run writes its own messages to standard error. A program that logs
// otherwise sets logrus's level and output, or adds a hook, once at start. Warnings about
// what a copy left out are also in copy.Result.LeftOut.
//
// # Stability
//
// Everything exported here is stable, in the sense every package of the module uses: it is
// not removed or changed incompatibly without a new major version. Within that promise:
//
//   - the core interfaces (ImageTransport, ImageReference, ImageSource, ImageDestination,
//     BlobInfoCache) never gain a method, so an implementation written today keeps
//     compiling; new capabilities arrive as new optional interfaces;
//   - option and property structs (SystemContext, PutBlobOptions, DestinationProperties, ...)
//     may gain fields, whose zero value keeps today's behaviour;
//   - new sentinels and error classes may be added, and an error may come to wrap a more
//     specific sentinel than before; error messages are for people and may change at any
//     time, so never compare them.
package types
