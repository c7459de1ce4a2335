// Package tarfile reads and writes the `docker save` archive format; package docker/archive
// wraps it as the docker-archive: transport.
//
// Reading accepts every flavour in use: the classic format (manifest.json, a repositories
// file, legacy <id>/layer.tar directories and symlinks), the Docker 25+ format (an OCI layout
// inside the tar, manifest.json pointing into blobs/sha256/), layer files compressed with gzip
// or zstd (crane), several images per archive, and archives that are themselves gzip-compressed
// (spooled once, decompressed, to a temporary file). The tar is indexed once and members are
// served as sections of the file. When the OCI layout part holds a manifest (or an index)
// whose config and layers are those of the chosen manifest.json entry, that original manifest
// is returned, so digests survive; otherwise a manifest is synthesized whose layer digests and
// media types fit the bytes served (uncompressed layers are checked against the config's
// diff_ids as they stream).
//
// Writing produces, by default, a Docker 25+ style archive: blobs/sha256/<hex> for configs,
// layers (as they come, usually compressed) and manifests, oci-layout, index.json naming each
// image (org.opencontainers.image.ref.name and io.containerd.image.name set to name:tag),
// manifest.json and repositories. The classic layout (WriterOptions.Classic) stores
// uncompressed layers as <hex>.tar with legacy <id>/ directories, as containers/image does.
// The tar itself is an internal/tarstore.Store, shared with oci-archive: blobs of known digest
// and size are written concurrently, each into a region of the tar reserved for it when it
// starts; others are spooled to a temporary file and appended.
//
// # Stability
//
// The formats are stable: it keeps reading every flavour above, and what it writes stays
// loadable by `docker load`. Its Go API (Reader, Writer, NewSource, NewDestination and the rest) is
// the docker-archive transport's and is not covered by the stability promise; use package
// docker/archive, and it may change or move under internal/.
package tarfile
