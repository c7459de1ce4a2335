package tarfile

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/tarstore"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/types"
)

// Writer writes a `docker save` archive holding one or more images into a tarstore.Store (a
// temporary file renamed into place by Close; blobs stored once, written concurrently). A
// Writer is safe for concurrent use.
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

	// prevMu guards prev, the archive this one replaces (opened on first use, for reusing its
	// blobs), and prevDone, set once prev was opened or reuse ended.
	prevMu   sync.Mutex
	prev     *Reader
	prevDone bool
}

// WriterOptions are the optional arguments of NewWriter.
type WriterOptions struct {
	// Classic writes the classic uncompressed layout (layers as <hex>.tar with legacy
	// <id>/layer.tar links, configs as <hex>.json, no OCI layout part).
	Classic bool
	// TempDir is where blobs of unknown size are spooled; "" means the archive's directory.
	TempDir string
}

// NewWriter starts writing an archive that Close will store at path.
func NewWriter(path string, opts WriterOptions) (*Writer, error) {
	store, err := tarstore.Create(path, tarstore.Options{TempDir: opts.TempDir})
	if err != nil {
		return nil, errors.Wrap(err, "creating docker archive")
	}
	return &Writer{
		store: store, tempDir: opts.TempDir, classic: opts.Classic,
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

// previous returns the archive currently at the path, which this one will replace, or nil;
// the caller holds prevMu.
func (w *Writer) previousLocked() *Reader {
	if w.prevDone {
		return w.prev
	}
	w.prevDone = true
	st, err := os.Stat(w.Path())
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	if w.prev, err = NewReader(w.Path(), &types.SystemContext{BigFilesTemporaryDir: w.tempDir}); err != nil {
		logrus.WithField("path", w.Path()).Debugf("not reusing blobs of the archive being replaced: %v", err)
	}
	return w.prev
}

// ReuseFromPrevious copies blob d, verified, from the archive being replaced (when it holds
// it under a content-addressed name) and returns its size. Nothing is fetched over a network.
func (w *Writer) ReuseFromPrevious(d digest.Digest) (int64, bool) {
	if d.Validate() != nil {
		return -1, false
	}
	w.prevMu.Lock()
	defer w.prevMu.Unlock()
	prev := w.previousLocked()
	if prev == nil {
		return -1, false
	}
	for _, name := range []string{blobPath(d), d.Encoded() + ".tar", d.Encoded() + ".json"} {
		e, err := prev.index.Lookup(name)
		if err != nil {
			continue
		}
		vr, err := verify.NewReader(io.NewSectionReader(prev.file, e.Offset, e.Size), d, e.Size)
		if err == nil {
			err = w.store.AddBlob(d, e.Size, vr, w.blobMember(d, strings.HasSuffix(name, ".json")))
		}
		if err != nil {
			logrus.WithField("digest", d).Debugf("not reusing blob of the archive being replaced: %v", err)
			return -1, false
		}
		return e.Size, true
	}
	return -1, false
}
