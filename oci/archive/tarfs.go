package archive

import (
	"context"

	"io"
	"io/fs"
	"path"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/archivefile"
	"github.com/imgcopy/imgcopy/internal/fileid"
	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/internal/tarindex"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// openedArchive is an archive file indexed once.
type openedArchive struct {
	f  *archivefile.File
	ix *tarindex.Index
}

// fsys returns the archive's members as a file system.
func (a *openedArchive) fsys() tarFS { return tarFS{ix: a.ix, id: a.f.ID()} }

// openArchive opens and indexes the tar at path, decompressing a compressed one into a spool
// in tempDir ("" for the default; see internal/archivefile). A missing file is
// types.ErrManifestNotFound.
func openArchive(ctx context.Context, path, tempDir string) (*openedArchive, error) {
	f, err := archivefile.Open(ctx, path, tempDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "archive %s does not exist", path)
		}
		if errors.Is(err, archivefile.ErrDirectory) {
			return nil, pathformat.DirectoryNotArchive("oci-archive", path, false)
		}
		return nil, err
	}
	// Listing an archive opens it once per image: its headers are read once for all of them.
	ix, err := tarindex.Shared(f, f.Size(), f.ID())
	if err != nil {
		f.Close()
		return nil, errors.Wrapf(tarindex.Malformed(err, types.ErrInvalidLayout), "indexing archive %s", path)
	}
	return &openedArchive{f: f, ix: ix}, nil
}

// Close closes the archive file.
func (a *openedArchive) Close() error { return a.f.Close() }

// index returns the archive's validated index.json.
func (a *openedArchive) index(where string) (*imgspecv1.Index, error) {
	return layout.ReadIndex(a.fsys(), where)
}

// tarFS serves the members of an indexed tar as an fs.FS, as sections of the archive. A
// member's FileInfo.Sys is its fileid.ID (from id, the archive's), so that the layout reader
// keeps a parsed index.json while the archive stays the same.
type tarFS struct {
	ix *tarindex.Index
	id fileid.ID
}

// Open implements fs.FS.
func (t tarFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	sr, err := t.ix.Open(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	_, off, n := sr.Outer()
	return &tarFile{SectionReader: sr, name: path.Base(name), id: t.id.Part(off, n)}, nil
}

// tarFile is one member opened through tarFS.
type tarFile struct {
	*io.SectionReader
	name string
	id   fileid.ID // the zero ID when unknown
}

// Stat implements fs.File.
func (f *tarFile) Stat() (fs.FileInfo, error) {
	return memberInfo{name: f.name, size: f.Size(), id: f.id}, nil
}

// Close implements fs.File; the archive itself is closed by its owner.
func (f *tarFile) Close() error { return nil }

type memberInfo struct {
	name string
	size int64
	id   fileid.ID
}

func (m memberInfo) Name() string       { return m.name }
func (m memberInfo) Size() int64        { return m.size }
func (m memberInfo) Mode() fs.FileMode  { return 0o444 }
func (m memberInfo) ModTime() time.Time { return time.Time{} }
func (m memberInfo) IsDir() bool        { return false }
func (m memberInfo) Sys() any           { return m.id }
