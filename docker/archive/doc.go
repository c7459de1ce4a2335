// Package archive implements the docker-archive: transport, which reads and writes the
// `docker save` format (see package docker/tarfile for the format itself).
//
// Reading (docker-archive:PATH[:NAME:TAG] or docker-archive:PATH:@N) indexes the tar once and
// serves layers as sections of the file; a gzip- or zstd-compressed archive (`docker save |
// gzip`), or one read from a pipe, is decompressed once into a temporary file (see
// internal/archivefile). docker-archive:PATH alone lists every image (types.ImageLister).
// Writing produces an archive that `docker load` accepts and that also holds an OCI layout,
// so that digests survive a round trip; SystemContext.DockerArchiveClassic writes the
// classic uncompressed form instead. Writing into an existing archive adds the image, or
// replaces the one of the same name, and keeps the others; a StoreWriter (the transport is a
// types.StoreTransport) writes many images in one rewrite.
//
// # Getting started
//
// Parse "docker-archive:PATH[:NAME:TAG]" with a transport list (transports/alltransports),
// or call NewReference (an image by name, or the only one) or NewIndexReference (the N-th
// image). Nothing of a write is visible before Commit: the new archive is a temporary file
// renamed over PATH. References also implement types.TagLister (the RepoTags) and
// types.ManifestDigester.
//
// # Stability
//
// Transport, NewReference, NewIndexReference, the reference syntax (skopeo's) and the
// archive format written (what `docker load` reads) are stable.
package archive
