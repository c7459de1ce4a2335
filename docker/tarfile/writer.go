package tarfile

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/tarappend"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/types"
)

// Writer writes a `docker save` archive holding one or more images. The tar is written to a
// temporary file next to the final path and renamed there by Close, so a failed or abandoned
// write never leaves a partial archive at the path. Blobs are stored once even when several
// images share them. A Writer is safe for concurrent use: a blob of known digest and size gets
// its place in the tar reserved up front and is written there while others are written
// elsewhere in the file (see region); other members are appended one at a time.
type Writer struct {
	path    string
	tempDir string // for spooling blobs of unknown size or digest
	classic bool

	// mu serializes writing the tar and guards everything below except blobs, which is
	// also guarded by blobsMu so that HasBlob never waits for a blob being streamed.
	mu       sync.Mutex
	file     *os.File
	tf       *tarappend.File
	finished bool
	inflight map[digest.Digest]bool // blobs being written into a reserved region

	blobsMu      sync.RWMutex
	blobs        map[digest.Digest]storedBlob // written with mu and blobsMu held
	items        []ManifestItem
	itemByConfig map[digest.Digest]int
	repositories map[string]map[string]string
	ociEntries   []imgspecv1.Descriptor
	legacyLayers map[string]bool

	prevOnce sync.Once
	prev     *Reader // the archive this one replaces, for reusing its blobs
}

// storedBlob is a blob already in the archive.
type storedBlob struct {
	member string
	offset int64 // of the content in the tar file
	size   int64
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
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return nil, errors.Wrapf(err, "creating docker archive %s", path)
	}
	w := &Writer{
		path: path, tempDir: opts.TempDir, classic: opts.Classic, file: f,
		blobs: map[digest.Digest]storedBlob{}, inflight: map[digest.Digest]bool{}, itemByConfig: map[digest.Digest]int{},
		repositories: map[string]map[string]string{}, legacyLayers: map[string]bool{},
		ociEntries: []imgspecv1.Descriptor{},
	}
	if w.tempDir == "" {
		w.tempDir = dir
	}
	w.tf = tarappend.New(f)
	if !w.classic {
		for _, d := range []string{"blobs/", "blobs/sha256/"} {
			if err := w.tf.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
				w.Abort()
				return nil, errors.Wrapf(err, "writing docker archive %s", path)
			}
		}
	}
	return w, nil
}

// Classic reports whether the writer writes the classic layout.
func (w *Writer) Classic() bool { return w.classic }

// Path returns the final path of the archive.
func (w *Writer) Path() string { return w.path }

func (w *Writer) usable() error {
	switch {
	case w.finished:
		return errors.Errorf("docker archive %s is already closed", w.path)
	case w.tf.Broken() != nil:
		return errors.Wrapf(w.tf.Broken(), "docker archive %s is unusable after an earlier failure", w.path)
	}
	return nil
}

// HasBlob returns the size of a blob already in the archive.
func (w *Writer) HasBlob(d digest.Digest) (int64, bool) {
	w.blobsMu.RLock()
	defer w.blobsMu.RUnlock()
	b, ok := w.blobs[d]
	return b.size, ok
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

// PutBlob stores a blob read from r. With a known digest and size it streams straight into
// a region of the tar reserved for it, concurrently with other PutBlob calls; otherwise (or
// while the same blob is being written by another call) it is spooled to a temporary file
// first (hashing it) and then appended. A failure (stream error, digest mismatch,
// cancellation) leaves no blob behind: the tar is cut back, or, when members were written
// after the failed one, its region becomes a discarded member (see region.discard).
func (w *Writer) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	isConfig := opts.IsConfig
	if info.Digest != "" {
		if err := info.Digest.Validate(); err != nil {
			return types.BlobInfo{}, errors.Wrapf(err, "storing blob %q", info.Digest)
		}
		if size, ok := w.HasBlob(info.Digest); ok {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return types.BlobInfo{}, errors.Wrapf(err, "reading blob %s", info.Digest)
			}
			info.Size = size
			return info, nil
		}
	}
	if info.Digest == "" || info.Size < 0 {
		return w.putSpooled(ctx, r, info, opts)
	}
	vr, err := verify.NewPutReader(ctxio.Reader(ctx, r), info.Digest, info.Size, opts.Verified)
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s", info.Digest)
	}
	reg, size, err := w.reserve(info.Digest, info.Size, w.blobMember(info.Digest, isConfig))
	switch {
	case err != nil:
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s", info.Digest)
	case size >= 0: // stored meanwhile
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return types.BlobInfo{}, errors.Wrapf(err, "reading blob %s", info.Digest)
		}
		info.Size = size
		return info, nil
	case reg == nil: // being written by another call, which may still fail
		return w.putSpooled(ctx, vr, info, types.PutBlobOptions{IsConfig: isConfig, Verified: true})
	}
	if err := w.finish(reg, reg.Fill(vr)); err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s", info.Digest)
	}
	return info, nil
}

// putSpooled hashes r into a temporary file, then appends it.
func (w *Writer) putSpooled(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	isConfig := opts.IsConfig
	vr, err := verify.NewPutReader(ctxio.Reader(ctx, r), info.Digest, info.Size, opts.Verified)
	if err != nil {
		return types.BlobInfo{}, err
	}
	tmp, err := os.CreateTemp(w.tempDir, ".tmp-blob-*")
	if err != nil {
		return types.BlobInfo{}, errors.Wrap(err, "creating temporary blob file")
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	n, err := io.Copy(tmp, vr)
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "spooling blob %s", info.Digest)
	}
	d := vr.Digest()
	logrus.WithFields(logrus.Fields{"digest": d, "size": n}).Debug("spooled blob of unknown size")
	if size, ok := w.HasBlob(d); ok {
		info.Digest, info.Size = d, size
		return info, nil
	}
	if err := w.appendBlob(d, n, io.NewSectionReader(tmp, 0, n), isConfig); err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s", d)
	}
	info.Digest, info.Size = d, n
	return info, nil
}

// appendBlob writes one blob member and records it.
func (w *Writer) appendBlob(d digest.Digest, size int64, r io.Reader, isConfig bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.appendBlobLocked(d, size, r, isConfig)
}

func (w *Writer) appendBlobLocked(d digest.Digest, size int64, r io.Reader, isConfig bool) error {
	if err := w.usable(); err != nil {
		return err
	}
	if _, ok := w.blobs[d]; ok { // stored meanwhile by another image
		_, err := io.Copy(io.Discard, r)
		return err
	}
	return w.appendBlobAsLocked(d, size, r, w.blobMember(d, isConfig))
}

func (w *Writer) appendBlobAsLocked(d digest.Digest, size int64, r io.Reader, member string) error {
	off, err := w.appendLocked(member, size, r)
	if err != nil {
		return err
	}
	w.blobsMu.Lock()
	w.blobs[d] = storedBlob{member: member, offset: off, size: size}
	w.blobsMu.Unlock()
	return nil
}

// previous returns the archive currently at the path, which this one will replace, or nil.
func (w *Writer) previous() *Reader {
	w.prevOnce.Do(func() {
		st, err := os.Stat(w.path)
		if err != nil || !st.Mode().IsRegular() {
			return
		}
		if w.prev, err = NewReader(w.path, &types.SystemContext{BigFilesTemporaryDir: w.tempDir}); err != nil {
			logrus.WithField("path", w.path).Debugf("not reusing blobs of the archive being replaced: %v", err)
		}
	})
	return w.prev
}

// ReuseFromPrevious copies blob d, verified, from the archive being replaced (when it holds
// it under a content-addressed name) and returns its size. Nothing is fetched over a network.
func (w *Writer) ReuseFromPrevious(d digest.Digest) (int64, bool) {
	if d.Validate() != nil {
		return -1, false
	}
	prev := w.previous()
	if prev == nil {
		return -1, false
	}
	for _, name := range []string{blobPath(d), d.Encoded() + ".tar", d.Encoded() + ".json"} {
		e, err := prev.index.Lookup(name)
		if err != nil {
			continue
		}
		member := w.blobMember(d, strings.HasSuffix(name, ".json"))
		vr, err := verify.NewReader(io.NewSectionReader(prev.file, e.Offset, e.Size), d, e.Size)
		if err != nil {
			return -1, false
		}
		w.mu.Lock()
		err = w.usable()
		if _, ok := w.blobs[d]; !ok && err == nil {
			err = w.appendBlobAsLocked(d, e.Size, vr, member)
		}
		w.mu.Unlock()
		if err != nil {
			logrus.WithField("digest", d).Debugf("not reusing blob of the archive being replaced: %v", err)
			return -1, false
		}
		return e.Size, true
	}
	return -1, false
}

// appendLocked writes a regular member and returns the offset of its content. On failure
// the tar is cut back to where it was, so the archive stays consistent.
func (w *Writer) appendLocked(name string, size int64, r io.Reader) (int64, error) {
	return w.tf.Append(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}, r)
}
