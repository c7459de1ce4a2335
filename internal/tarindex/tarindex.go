// Package tarindex indexes a tar archive once and serves its members as sections of the
// underlying file, so archives are read with random access and never extracted. Member names
// are normalized and checked: absolute names, ".." components, sparse files, duplicate names
// and links that leave the archive are errors.
package tarindex

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/fileid"
	"github.com/imgcopy/imgcopy/types"
)

// ErrUnsafePath is types.ErrUnsafePath, returned (wrapped, naming the member) for absolute or
// escaping names and links.
var ErrUnsafePath = types.ErrUnsafePath

// ErrDuplicateEntry is types.ErrDuplicateEntry, returned (wrapped) when two members have the
// same name.
var ErrDuplicateEntry = types.ErrDuplicateEntry

const maxLinkHops = 16

// Malformed returns err, when it says that the file is not a complete tar archive (an
// invalid header, a header or member cut short), as an error that also matches sentinel
// with errors.Is (the transport's: types.ErrInvalidArchive, types.ErrInvalidLayout), so
// that a caller can tell a damaged or wrong file from one that could not be read. Other
// errors, and nil, come back unchanged.
func Malformed(err, sentinel error) error {
	if err == nil || !(errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return err
	}
	return malformedError{err: err, sentinel: sentinel}
}

// malformedError is err, which also matches sentinel.
type malformedError struct{ err, sentinel error }

func (e malformedError) Error() string        { return e.err.Error() + ": " + e.sentinel.Error() }
func (e malformedError) Unwrap() error        { return e.err }
func (e malformedError) Is(target error) bool { return target == e.sentinel }

// maxEntries bounds the members an index holds (a few hundred bytes of memory each), so that a
// hostile archive of millions of empty members cannot exhaust memory. Real bundles hold a
// few per blob: a million covers hundreds of thousands of layers.
const maxEntries = 1 << 20

// Entry is one member of the archive.
type Entry struct {
	Name     string // normalized: relative, slash-separated, no "./" prefix
	Typeflag byte
	Linkname string // normalized target for symlinks and hard links
	Offset   int64  // where the content starts in the archive
	Size     int64
}

// Index maps member names to their location in the archive.
type Index struct {
	ra      io.ReaderAt
	entries map[string]*Entry
	limit   int // most entries Build accepts
}

// countingReader tracks the offset of the archive's reader. It seeks, so that tar.Reader
// skips the members' content instead of reading it: indexing reads only the headers.
type countingReader struct {
	r *io.SectionReader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := c.r.Seek(offset, whence)
	if err == nil {
		c.n = pos
	}
	return pos, err
}

// Clean normalizes a member name or returns ErrUnsafePath.
func Clean(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	if n == "" || strings.HasPrefix(n, "/") {
		return "", errors.Wrapf(ErrUnsafePath, "%q", name)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", errors.Wrapf(ErrUnsafePath, "%q", name)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", errors.Wrapf(ErrUnsafePath, "%q", name)
	}
	return c, nil
}

// Build reads every header of the tar in ra (size bytes) and returns the index. A regular
// member that repeats an earlier one with the same size and content is accepted (crane writes
// a config shared by several images once per image) and the first copy is kept; differing
// duplicates are ErrDuplicateEntry.
func Build(ra io.ReaderAt, size int64) (*Index, error) {
	return build(ra, size, maxEntries)
}

// lastBuilt is the index Shared built last, with the ID and size of its tar. Its entries
// are never modified after Build, so indexes on other opens of the same tar share them.
var lastBuilt struct {
	mu   sync.Mutex
	id   fileid.ID
	size int64
	ix   *Index
}

// Shared is Build for a tar whose content id identifies (see internal/fileid): while the
// same tar is opened again, its headers are not read again, so that opening each of the many
// images of an archive reads them once, not once per image. The zero ID always builds.
func Shared(ra io.ReaderAt, size int64, id fileid.ID) (*Index, error) {
	if !id.IsZero() {
		lastBuilt.mu.Lock()
		last := lastBuilt.ix
		if lastBuilt.id != id || lastBuilt.size != size {
			last = nil
		}
		lastBuilt.mu.Unlock()
		if last != nil {
			return &Index{ra: ra, entries: last.entries, limit: last.limit}, nil
		}
	}
	ix, err := Build(ra, size)
	if err != nil || id.IsZero() {
		return ix, err
	}
	lastBuilt.mu.Lock()
	lastBuilt.id, lastBuilt.size, lastBuilt.ix = id, size, ix
	lastBuilt.mu.Unlock()
	return ix, nil
}

// build is Build with at most limit members; more is types.ErrTooLarge.
func build(ra io.ReaderAt, size int64, limit int) (*Index, error) {
	cr := &countingReader{r: io.NewSectionReader(ra, 0, size)}
	tr := tar.NewReader(cr)
	ix := &Index{ra: ra, entries: map[string]*Entry{}, limit: limit}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.Wrap(err, "reading tar header")
		}
		if err := ix.add(hdr, cr.n, size); err != nil {
			return nil, err
		}
	}
	return ix, nil
}

func (ix *Index) add(hdr *tar.Header, offset, total int64) error {
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	name, err := Clean(hdr.Name)
	if err != nil {
		return err
	}
	e := &Entry{Name: name, Typeflag: hdr.Typeflag, Offset: offset, Size: hdr.Size}
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00': // '\x00' is the pre-POSIX regular file
	case tar.TypeSymlink:
		target := hdr.Linkname
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(name), target)
		}
		if e.Linkname, err = Clean(target); err != nil {
			return errors.Wrapf(ErrUnsafePath, "symlink %q points outside the archive (%q)", name, hdr.Linkname)
		}
		e.Size = 0
	case tar.TypeLink:
		if e.Linkname, err = Clean(hdr.Linkname); err != nil {
			return errors.Wrapf(ErrUnsafePath, "hard link %q points outside the archive (%q)", name, hdr.Linkname)
		}
		e.Size = 0
	case tar.TypeGNUSparse:
		return errors.Errorf("sparse member %q in archive is not supported", name)
	default:
		return nil // devices, fifos and the like are never image content
	}
	if offset+e.Size > total {
		return errors.Wrapf(io.ErrUnexpectedEOF, "archive truncated in member %q", name)
	}
	if prev, dup := ix.entries[name]; dup {
		if ix.identical(prev, e) {
			return nil
		}
		return errors.Wrapf(ErrDuplicateEntry, "%q", name)
	}
	if len(ix.entries) >= ix.limit {
		return errors.Wrapf(types.ErrTooLarge, "archive has more than %d members", ix.limit)
	}
	ix.entries[name] = e
	return nil
}

// Lookup returns the regular-file entry for name, following symlinks and hard links inside
// the archive. A missing member is fs.ErrNotExist (wrapped).
func (ix *Index) Lookup(name string) (*Entry, error) {
	n, err := Clean(name)
	if err != nil {
		return nil, err
	}
	for hops := 0; hops <= maxLinkHops; hops++ {
		e, ok := ix.entries[n]
		if !ok {
			return nil, errors.Wrapf(fs.ErrNotExist, "%q not found in archive", name)
		}
		if e.Typeflag != tar.TypeSymlink && e.Typeflag != tar.TypeLink {
			return e, nil
		}
		n = e.Linkname
	}
	return nil, errors.Errorf("too many levels of links resolving %q in archive", name)
}

// Open returns the content of the member name as a section of the archive.
func (ix *Index) Open(name string) (*io.SectionReader, error) {
	e, err := ix.Lookup(name)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(ix.ra, e.Offset, e.Size), nil
}

// Names returns all member names (not directories), sorted.
func (ix *Index) Names() []string {
	names := make([]string, 0, len(ix.entries))
	for n := range ix.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// identical reports whether two regular members have the same size and content.
func (ix *Index) identical(a, b *Entry) bool {
	regular := func(e *Entry) bool { return e.Typeflag == tar.TypeReg || e.Typeflag == '\x00' }
	if !regular(a) || !regular(b) || a.Size != b.Size {
		return false
	}
	ra, rb := io.NewSectionReader(ix.ra, a.Offset, a.Size), io.NewSectionReader(ix.ra, b.Offset, b.Size)
	bufA, bufB := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		na, errA := io.ReadFull(ra, bufA)
		nb, errB := io.ReadFull(rb, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false
		}
		if errA != nil || errB != nil {
			return (errA == io.EOF || errA == io.ErrUnexpectedEOF) && (errB == io.EOF || errB == io.ErrUnexpectedEOF)
		}
	}
}
