// Package archive implements the "oci-archive:" transport: an OCI image layout inside a tar
// file, possibly holding several images.
//
// Reading indexes the tar once (internal/tarindex) and serves blobs as sections of the file;
// nothing is extracted. Writing builds a new tar as a temporary file next to PATH with
// internal/tarstore (shared with docker-archive): blobs as they arrive, concurrently, each
// streaming into its own region of the tar and verified on the way (a failed stream leaves
// nothing under its name), then, at Commit and under a lock on the directory, the blobs of the
// archive currently at PATH that its other images need (so they are kept) and index.json
// last; the temporary file is then renamed over PATH. A StoreWriter (the transport is a
// types.StoreTransport) writes many images into one such rewrite. Compressed archives are
// read through a decompressed spool (internal/archivefile) and written compressed on request
// (SystemContext.ArchiveCompression or the file suffix).
//
// # Getting started
//
// Parse "oci-archive:PATH[:NAME]" with a transport list (transports/alltransports), or call
// NewReference(PATH, NAME) or NewDigestReference; names work as in package oci/layout.
// oci-archive:PATH alone lists every image (types.ImageLister); references also implement
// types.TagLister and types.ManifestDigester, destinations types.ReferrersLister and
// types.RelatedDestination, sources types.ReferrersLister and types.RelatedSource.
//
// # Stability
//
// Transport, NewReference, NewDigestReference, the reference syntax (skopeo's) and the
// archive written (an OCI image layout in a tar, optionally gzip- or zstd-compressed) are
// stable.
package archive
