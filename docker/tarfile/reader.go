package tarfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/tarindex"
	"github.com/imgcopy/imgcopy/types"
)

// Reader gives random access to the members of a `docker save` archive. The tar is indexed
// once; members are served as sections of the file. A gzip-compressed archive, or one that is
// not a regular file (a pipe), is first spooled (decompressed) to a temporary file, which
// Close removes. A Reader is safe for concurrent use.
type Reader struct {
	path     string // as given by the user, for messages
	file     *os.File
	tempPath string // spooled copy to remove on Close, or ""
	index    *tarindex.Index
	items    []ManifestItem

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
// is used for a spooled copy.
func NewReader(path string, sys *types.SystemContext) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "opening docker archive %s: %v", path, err)
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
	if err := r.spoolIfNeeded(sys); err != nil {
		return nil, err
	}
	st, err := r.file.Stat()
	if err != nil {
		return nil, errors.Wrapf(err, "reading docker archive %s", path)
	}
	// crane repeats a config that several images share; identical copies are harmless.
	if r.index, err = tarindex.Build(r.file, st.Size()); err != nil {
		return nil, errors.Wrapf(err, "reading docker archive %s", path)
	}
	b, err := r.ReadMember(manifestFileName, iolimits.MaxIndexFileSize)
	if err != nil {
		return nil, errors.Wrapf(err, "reading docker archive %s", path)
	}
	if r.items, err = ParseManifestJSON(b); err != nil {
		return nil, errors.Wrapf(err, "reading docker archive %s", path)
	}
	ok = true
	return r, nil
}

// spoolIfNeeded replaces r.file by a decompressed (or simply copied) temporary file when the
// archive is gzip-compressed or not seekable.
func (r *Reader) spoolIfNeeded(sys *types.SystemContext) error {
	st, err := r.file.Stat()
	if err != nil {
		return errors.Wrapf(err, "reading docker archive %s", r.path)
	}
	br := bufio.NewReader(r.file)
	magic, _ := br.Peek(2)
	gz := bytes.Equal(magic, []byte{0x1f, 0x8b})
	if st.Mode().IsRegular() && !gz {
		return nil
	}
	var src io.Reader = br
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return errors.Wrapf(err, "decompressing docker archive %s", r.path)
		}
		defer zr.Close()
		src = zr
	}
	dir := os.TempDir()
	if sys != nil && sys.BigFilesTemporaryDir != "" {
		dir = sys.BigFilesTemporaryDir
	}
	tmp, err := os.CreateTemp(dir, "imgcopy-docker-archive-*.tar")
	if err != nil {
		return errors.Wrap(err, "creating temporary file for docker archive")
	}
	logrus.WithFields(logrus.Fields{"archive": r.path, "temp": tmp.Name(), "gzip": gz}).Debug("spooling docker archive")
	orig := r.file
	r.file, r.tempPath = tmp, tmp.Name()
	_, err = io.Copy(tmp, src)
	orig.Close()
	if err != nil {
		return errors.Wrapf(err, "spooling docker archive %s", r.path)
	}
	return nil
}

// Close releases the archive and removes a spooled copy.
func (r *Reader) Close() error {
	var err error
	if r.file != nil {
		err = r.file.Close()
	}
	if r.tempPath != "" {
		if rerr := os.Remove(r.tempPath); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// Items returns the entries of manifest.json.
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
			return -1, errors.Errorf("docker archive %s holds %d images: choose one with :NAME:TAG or :@N", r.path, len(r.items))
		}
		return 0, nil
	}
	want := NameTag(name)
	found := -1
	for i, it := range r.items {
		for _, t := range it.RepoTags {
			nt, err := parseRepoTag(t)
			if err != nil || NameTag(nt) != want {
				continue
			}
			if found >= 0 && found != i {
				return -1, errors.Wrapf(ErrInvalidArchive, "tag %s names both image @%d and @%d", want, found, i)
			}
			found = i
		}
	}
	if found < 0 {
		return -1, errors.Wrapf(types.ErrManifestNotFound, "no image tagged %s in docker archive %s", want, r.path)
	}
	return found, nil
}

// facts returns (and caches) the compression, digest and size of the layer member name. The
// digest is only computed (by streaming the member once) for compressed layers; for
// uncompressed ones the caller supplies it (the diff ID, checked when served).
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
	switch {
	case n >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return "gzip"
	case n >= 4 && bytes.Equal(b[:], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return ""
}

// imageName renders "path@N" for messages.
func (r *Reader) imageName(i int) string {
	return r.path + ":@" + strconv.Itoa(i)
}
