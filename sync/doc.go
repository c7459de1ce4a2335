// Package sync mirrors sets of images: every tag of a registry repository (filtered by
// literal tags, regular expressions and semver ranges), every image of an OCI layout or
// archive, or the sources a skopeo-sync-style YAML file lists, into one destination store
// (a registry or a prefix on it, an OCI layout, an archive, a dir: tree). Importers alias
// it (`syncer`), because the package name shadows the standard library's.
//
// A sync is planned first, then run. Plan lists the source images, names each one in the
// destination (skopeo's naming, or a per-source template), keeps this process's share
// (Options.Shard), and resolves both digests with HEAD requests: an image whose source digest
// the destination already has under that name (or the digest a previous copy wrote for it,
// remembered in the blob-info cache when the copy changed it, e.g. a platform subset) is up
// to date and costs no manifest GET at the source. Run copies the rest, several images at a
// time, sharing one blob-transfer budget (copy.Budget) and one blob-info cache, so that a
// blob several images need crosses the network once per destination; it keeps going after a
// failure unless told to stop, and reports every image with its action, digest, bytes,
// time and, for a failure, the error and its class.
//
// The package names no transport: names are parsed with the types.TransportList given in
// Options, and the transports' optional interfaces (types.ImageLister,
// types.ManifestDigester, types.StoreTransport, types.TagDeleter, types.StoreWriterOpener)
// say what each end can do.
package sync
