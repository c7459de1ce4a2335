// Package inspect reads an image's manifest and config and summarizes them the way
// `skopeo inspect` does. It is the library behind `imgcopy inspect`, `list-tags` and
// `referrers`; it only reads, through types.ImageSource, and never imports a transport, so
// it works with any transport, a custom one included.
//
// # Getting started
//
// Inspect returns the summary (Output, with skopeo's JSON field names); Read returns the
// manifest and config themselves, with the config's digest checked; RawManifest returns the
// top-level manifest exactly as stored. For a store of many images (oci:PATH,
// docker-archive:PATH, ...), ListStore and InspectStore describe every image, and
// ListReferrers lists the artifacts (signatures, SBOMs) that refer to an image.
//
// # Stability
//
// Every exported function and type is stable; result structs may gain fields. The JSON
// field names of Output, StoredImage, StoreOutput, Referrer and ReferrersList are part of
// the CLI's output and follow skopeo where skopeo has the same output.
package inspect
