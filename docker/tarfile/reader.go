package tarfile

import (
	"context"

	"io"
	"io/fs"
	"strconv"
	"sync"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/archivefile"
	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/internal/tarindex"
	"github.com/imgcopy/imgcopy/types"
)

// Reader gives random access to the members of a `docker save` archive. The tar is indexed
// once; members are served as sections of the file. A gzip- or zstd-compressed archive, or one
// that is not a regular file (a pipe), is read from a decompressed spool file (see
// internal/archivefile). A Reader is safe for concurrent use.
type Reader struct {
	path  string // as given by the user, for messages
	file  *archivefile.File
	index *tarindex.Index
	items []ManifestItem // of meta
	meta  *archiveItems

	ociOnce sync.Once
	oci     *ociIndex // nil when the archive has no index.json
	ociErr  error

	mu      sync.Mutex
	digests map[string]layerFacts // per resolved member name, computed lazily
}

// layerFacts describes the bytes of one layer member as we serve them.
type layerFacts struct {
	compression string // "gzip", "zstd" or "" for none
	digest      digest.Digest
	size        int64
}

// NewReader opens and indexes the archive at path. sys may be nil; sys.BigFilesTemporaryDir
// is used for a spooled copy, whose making (a compressed archive) stops when ctx is done.
func NewReader(ctx context.Context, path string, sys *types.SystemContext) (*Reader, error) {
	tempDir := ""
	if sys != nil {
		tempDir = sys.BigFilesTemporaryDir
	}
	f, err := archivefile.Open(ctx, path, tempDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "opening docker archive %s: %v", path, err)
		}
		if errors.Is(err, archivefile.ErrDirectory) {
			return nil, pathformat.DirectoryNotArchive("docker-archive", path, false)
		}
		return nil, errors.Wrapf(err, "opening docker archive %s", path)
	}
	r := &Reader{path: path, file: f, digests: map[string]layerFacts{}}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	// crane repeats a config that several images share; identical copies are harmless.
	if r.index, err = tarindex.Shared(r.file, r.file.Size(), r.file.ID()); err != nil {
		return nil, errors.Wrapf(tarindex.Malformed(err, ErrInvalidArchive), "reading docker archive %s", path)
	}
	r.meta, err = r.readItems()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, r.noManifestJSON()
	}
	if err != nil {
		return nil, errors.Wrapf(err, "reading docker archive %s", path)
	}
	r.items, ok = r.meta.items, true
	return r, nil
}

// noManifestJSON is the error for an archive without manifest.json: not a docker archive
// (the file exists, so it is not "not found"). An OCI layout in a tar (regctl image export,
// crane pull --format oci, skopeo's oci-archive) is the usual case: say how to read it.
func (r *Reader) noManifestJSON() error {
	if _, err := r.index.Lookup(ociLayoutFileName); err == nil {
		return &types.WrongFormatError{Err: errors.Wrapf(ErrInvalidArchive, "reading docker archive %s: it has no %s", r.path, manifestFileName),
			Holds: "an OCI image layout", Use: "oci-archive:" + r.path}
	}
	return errors.Wrapf(ErrInvalidArchive, "reading docker archive %s: it has no %s", r.path, manifestFileName)
}

// Close releases the archive.
func (r *Reader) Close() error {
	return r.file.Close()
}

// Items returns the entries of manifest.json. The caller must not modify them: they are
// shared by the Readers of the same archive.
func (r *Reader) Items() []ManifestItem { return r.items }

// Open returns a member (following links inside the archive) as a section of the file. A
// missing member is fs.ErrNotExist (wrapped).
func (r *Reader) Open(name string) (*io.SectionReader, error) {
	return r.index.Open(name)
}

// ReadMember reads a whole member, capped at limit bytes.
func (r *Reader) ReadMember(name string, limit int) ([]byte, error) {
	sr, err := r.index.Open(name)
	if err != nil {
		return nil, err
	}
	if sr.Size() > int64(limit) {
		return nil, errors.Wrapf(iolimits.ErrTooLarge, "member %q is %d bytes, more than %d", name, sr.Size(), limit)
	}
	b, err := iolimits.ReadAtMost(sr, limit)
	if err != nil {
		return nil, errors.Wrapf(err, "reading member %q", name)
	}
	return b, nil
}

// resolve returns the name of the regular file a member name leads to (after links).
func (r *Reader) resolve(name string) (string, error) {
	e, err := r.index.Lookup(name)
	if err != nil {
		return "", err
	}
	return e.Name, nil
}

// Choose selects the manifest.json entry for name (nil: the only image) or, when index >= 0,
// the entry at that position. It returns the entry's position.
func (r *Reader) Choose(name reference.NamedTagged, index int) (int, error) {
	switch {
	case index >= 0:
		if index >= len(r.items) {
			return -1, errors.Wrapf(types.ErrManifestNotFound, "docker archive %s has %d images, no @%d", r.path, len(r.items), index)
		}
		return index, nil
	case name == nil:
		if len(r.items) != 1 {
			return -1, types.UsageError{Err: errors.Errorf("docker archive %s holds %d images: choose one with :NAME:TAG or :@N", r.path, len(r.items))}
		}
		return 0, nil
	}
	want := NameTag(name)
	switch pos := r.meta.byName[want]; len(pos) {
	case 0:
		return -1, errors.Wrapf(types.ErrManifestNotFound, "no image tagged %s in docker archive %s", want, r.path)
	case 1:
		return pos[0], nil
	default:
		return -1, errors.Wrapf(ErrInvalidArchive, "tag %s names both image @%d and @%d", want, pos[0], pos[1])
	}
}

// facts returns (and caches) the compression, digest and size of the layer member name. The
// digest is only computed (by streaming the member once) for compressed layers; for
// uncompressed ones the caller supplies it (the diff ID, checked when served). A compressed
// layer is checked against its diff ID when served (diffIDReader), where its bytes are read
// anyway, so that planning a copy costs no decompression.
func (r *Reader) facts(name string, diffID digest.Digest) (layerFacts, error) {
	resolved, err := r.resolve(name)
	if err != nil {
		return layerFacts{}, errors.Wrapf(ErrInvalidArchive, "layer %q: %v", name, err)
	}
	r.mu.Lock()
	f, ok := r.digests[resolved]
	r.mu.Unlock()
	if ok {
		if f.compression == "" {
			f.digest = diffID
		}
		return f, nil
	}
	sr, err := r.index.Open(resolved)
	if err != nil {
		return layerFacts{}, err
	}
	f = layerFacts{compression: sniffCompression(sr), size: sr.Size(), digest: diffID}
	if f.compression != "" {
		h := digest.Canonical.Digester()
		if _, err := io.Copy(h.Hash(), io.NewSectionReader(sr, 0, sr.Size())); err != nil {
			return layerFacts{}, errors.Wrapf(err, "hashing layer %q", name)
		}
		f.digest = h.Digest()
	}
	r.mu.Lock()
	r.digests[resolved] = f
	r.mu.Unlock()
	return f, nil
}

// sniffCompression reports "gzip", "zstd" or "" from the first bytes of a member.
func sniffCompression(ra io.ReaderAt) string {
	var b [4]byte
	n, _ := ra.ReadAt(b[:], 0)
	return archivefile.Sniff(b[:n])
}

// imageName renders "path@N" for messages.
func (r *Reader) imageName(i int) string {
	return r.path + ":@" + strconv.Itoa(i)
}
