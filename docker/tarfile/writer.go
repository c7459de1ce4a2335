package tarfile

import (
	"context"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/tarstore"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// Writer writes a `docker save` archive holding one or more images into a tarstore.Store (a
// temporary file renamed into place by Commit; blobs stored once, written concurrently). The
// images of the archive already at the path are kept unless a new image takes all their
// names (see keepOthers). A Writer is safe for concurrent use. The blobs an image wrote
// before its copy failed stay in the tar, unreferenced by manifest.json and index.json.
type Writer struct {
	store   *tarstore.Store
	tempDir string
	classic bool

	// mu guards the image metadata, written out by Close.
	mu           sync.Mutex
	items        []ManifestItem
	itemByConfig map[digest.Digest]int
	repositories map[string]map[string]string
	ociEntries   []imgspecv1.Descriptor
	legacyLayers map[string]bool

	// prevMu guards prev, the archive at the path when the writer started (for reusing its
	// blobs), nil when there was none or reuse has ended.
	prevMu sync.Mutex
	prev   *Reader
}

// WriterOptions are the optional arguments of NewWriter.
type WriterOptions struct {
	// Classic writes the classic uncompressed layout (layers as <hex>.tar with legacy
	// <id>/layer.tar links, configs as <hex>.json, no OCI layout part).
	Classic bool
	// TempDir is where blobs of unknown size are spooled and a compressed archive being
	// replaced is decompressed; "" means the archive's directory or os.TempDir.
	TempDir string
	// Compression ("", "gzip" or "zstd") compresses the whole archive.
	Compression string
	// Resume takes over the blobs that writers killed before their Commit left beside the
	// archive (see Salvage), and keeps what arrived of blobs being written when the copy is
	// interrupted, in the partial downloads of this resume directory (KeepsPartialBlob); nil:
	// neither.
	Resume *types.ResumeOptions
	// NoFsync skips the fsyncs of the finished archive (--fsync=false).
	NoFsync bool
}

// NewWriter starts writing an archive that Commit will store at path. A file at path that is
// not a readable docker archive (other than an empty one) is refused rather than replaced.
func NewWriter(ctx context.Context, path string, opts WriterOptions) (*Writer, error) {
	dst, err := tarstore.ResolveDestination(path)
	if err != nil {
		return nil, errors.Wrap(err, "creating docker archive")
	}
	var prev *Reader
	if !dst.Stream { // a pipe or a device holds no archive to keep images of
		if prev, err = openCurrent(ctx, dst.Path, opts.TempDir); err != nil {
			return nil, err
		}
	}
	store, err := tarstore.Create(dst.Path, tarstore.Options{TempDir: opts.TempDir, Compression: opts.Compression, Resume: opts.Resume, NoFsync: opts.NoFsync, Stream: dst.Stream})
	if err != nil {
		if prev != nil {
			prev.Close()
		}
		return nil, errors.Wrap(err, "creating docker archive")
	}
	return &Writer{
		store: store, tempDir: opts.TempDir, classic: opts.Classic, prev: prev,
		itemByConfig: map[digest.Digest]int{}, repositories: map[string]map[string]string{},
		legacyLayers: map[string]bool{}, ociEntries: []imgspecv1.Descriptor{},
	}, nil
}

// Classic reports whether the writer writes the classic layout.
func (w *Writer) Classic() bool { return w.classic }

// Path returns the final path of the archive.
func (w *Writer) Path() string { return w.store.Path() }

// HasBlob returns the size of a blob already in the archive.
func (w *Writer) HasBlob(d digest.Digest) (int64, bool) {
	b, ok := w.store.Blob(d)
	return b.Size, ok
}

// WaitBlob returns the size of a blob in the archive, waiting first while another image's
// copy writes it (see tarstore.Store.Wait).
func (w *Writer) WaitBlob(ctx context.Context, d digest.Digest) (int64, bool, error) {
	b, ok, err := w.store.Wait(ctx, d)
	return b.Size, ok, err
}

// Salvage stores a blob of the image that a writer killed before its Commit had written
// beside the archive (tarstore.Store.Salvage), and returns its size.
func (w *Writer) Salvage(ctx context.Context, info types.BlobInfo) (int64, bool) {
	isConfig := info.MediaType == manifest.DockerV2Schema2ConfigMediaType || info.MediaType == imgspecv1.MediaTypeImageConfig
	b, ok := w.store.Salvage(ctx, info.Digest, info.Size, w.blobMember(info.Digest, isConfig))
	return b.Size, ok
}

// KeepsPartialBlob implements types.PartialBlobKeeper for the archive's destinations: with
// Resume, what arrived of a blob that a killed copy left unfinished stays in the unfinished
// archive, and that of an interrupted one goes to the resume directory, for the next writer,
// which offers it (tarstore.Store.KeepsPartial).
func (w *Writer) KeepsPartialBlob(info types.BlobInfo) (bool, io.ReadCloser, int64) {
	return w.store.KeepsPartial(info.Digest, info.Size)
}

// blobMember is where a blob is stored.
func (w *Writer) blobMember(d digest.Digest, isConfig bool) string {
	switch {
	case !w.classic:
		return blobPath(d)
	case isConfig:
		return d.Encoded() + ".json"
	default:
		return d.Encoded() + ".tar"
	}
}

// PutBlob stores a blob read from r (see tarstore.Store.Put).
func (w *Writer) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	d, size, err := w.store.Put(ctx, r, info.Digest, info.Size, opts.Verified, func(d digest.Digest) string {
		return w.blobMember(d, opts.IsConfig)
	})
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s", info.Digest)
	}
	info.Digest, info.Size = d, size
	return info, nil
}
