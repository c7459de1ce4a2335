// Package types holds the interfaces and value types that every imgcopy package meets at:
// image references and transports, image sources and destinations, blob descriptors, the
// blob-info cache, the system context (credentials, TLS, platform choices) and the typed
// errors. It imports nothing from this module.
//
// A copy always follows the same call order on a destination, written once here:
//
//  1. Properties, any number of times; then, when the destination implements ManifestChecker
//     and the top-level manifest would be written unchanged, HasManifest once. When it returns
//     true, steps 2 and the per-instance part of 3 are skipped.
//  2. For every blob (config and layers, in any order and, when Properties().ConcurrentBlobs
//     is true, concurrently): TryReusingBlob, then PutBlob if the blob was not reused.
//  3. PutManifest for every per-instance manifest of a multi-platform image
//     (instance != nil), each after that instance's blobs, then PutManifest for the top-level
//     manifest (instance == nil). With ConcurrentBlobs on both ends, the instances of an index
//     are copied side by side, so one instance's blobs may be written after another's
//     manifest; GetManifest and PutManifest calls never overlap each other.
//  4. Commit. (A copy that carries referrers and digest tags writes them between 3 and 4,
//     through the optional interfaces of referrers.go, which describes that part.)
//  5. Close, always, also after a failed or missing Commit. Nothing written by steps 2–3 may
//     become visible under a name (tag, index entry, archive path) before Commit succeeds.
package types
