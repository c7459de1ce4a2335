// Package archivefile opens archive files (docker-archive, oci-archive) for random access.
//
// A plain tar file is read in place. A gzip- or zstd-compressed one (recognised by its first
// bytes, whatever its name), or one that is not a regular file (a pipe, a process
// substitution), is decompressed or copied once into a spool file in the temporary directory
// and read there; never into memory. The spool file is unlinked as soon as it is created, so
// it disappears with the last open handle even if the process dies.
//
// Opens of the same compressed file (or of the same pipe, which can be read only once) share
// one spool while any of them is open, and for a
// short while after the last one closes (spoolLinger), so that listing the images of a bundle
// and then reading each of them decompresses it once.
package archivefile

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/fileid"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

// Compression names, as returned by File.Compression and accepted by writers.
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// maxZstdWindow bounds the memory a zstd-compressed archive may make the decoder use.
const maxZstdWindow = 128 << 20

// spoolLinger is how long a spool stays open after its last user closed it; afterFunc arms
// the timer (tests replace it).
var (
	spoolLinger = 30 * time.Second
	afterFunc   = time.AfterFunc
)

// File is an opened archive: a plain tar, readable at any offset.
type File struct {
	ra          io.ReaderAt
	size        int64
	compression string
	id          fileid.ID
	close       func() error
	closeOnce   sync.Once
	closeErr    error
}

// ReadAt implements io.ReaderAt; it is safe for concurrent use.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.ra.ReadAt(p, off) }

// Size is the size of the (uncompressed) tar.
func (f *File) Size() int64 { return f.size }

// Compression is how the file on disk is compressed: Gzip, Zstd or "".
func (f *File) Compression() string { return f.compression }

// ID identifies the content of the (uncompressed) tar, for keeping what was read from it:
// the fileid.Stable ID of the file on disk, or, for a pipe, the ID of its spool. It is the
// zero ID when the file cannot be identified or was modified a moment ago.
func (f *File) ID() fileid.ID { return f.id }

// Close releases the file (and, eventually, its spool). Only the first call does anything
// (the sources of both archive transports close their File, and a caller may close a source
// twice, e.g. once explicitly and once deferred); the others return its result.
func (f *File) Close() error {
	f.closeOnce.Do(func() { f.closeErr = f.close() })
	return f.closeErr
}

// Sniff returns the compression of a file from its first bytes: Gzip, Zstd or "".
func Sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return ""
}

// Decompress returns the content of r, compressed as compression (Gzip, Zstd, or "" for none:
// r itself). A zstd stream may not make the decoder use more than 128 MiB, whatever its
// frame header asks for.
func Decompress(r io.Reader, compression string) (io.ReadCloser, error) {
	switch compression {
	case Gzip:
		return gzip.NewReader(r)
	case Zstd:
		// A hostile frame header may ask for any window size; 128 MiB covers `zstd --long`.
		zr, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxZstdWindow))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// ErrDirectory is what Open returns (wrapped) for a directory.
var ErrDirectory = errors.New("is a directory, not a tar file")

// Open opens the archive at path. tempDir is where a spool goes ("" means os.TempDir()).
// A missing file is fs.ErrNotExist (wrapped), a directory ErrDirectory. Spooling stops when
// ctx is done (a 10 GiB .tar.gz takes minutes); an open that waits for the spool another
// open is making waits for it to end, and spools the file itself if that open was cancelled.
func Open(ctx context.Context, path, tempDir string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, errors.Wrap(ErrDirectory, path)
	}
	key := fileid.Of(st)
	if !st.Mode().IsRegular() {
		defer f.Close()
		// A pipe can be read once: every open of it in this process (listing a bundle read
		// from stdin, then reading each image) shares the one spool. Its size and time change
		// as it is written, so only the pipe itself is the key.
		return shared(key.Node(), func() (*File, error) {
			br := bufio.NewReaderSize(f, 64<<10)
			magic, _ := br.Peek(4)
			sp, err := spool(ctx, br, Sniff(magic), path, tempDir)
			if err == nil {
				sp.id = fileid.New() // the next spool of the pipe holds what was written since
			}
			return sp, err
		})
	}
	var magic [4]byte
	n, _ := f.ReadAt(magic[:], 0)
	compression := Sniff(magic[:n])
	if compression == "" {
		return &File{ra: f, size: st.Size(), id: fileid.Stable(st), close: f.Close}, nil
	}
	defer f.Close()
	h, err := sharedFile(ctx, key, func() (*File, error) {
		return spool(ctx, io.NewSectionReader(f, 0, st.Size()), compression, path, tempDir)
	})
	if err == nil {
		h.id = fileid.Stable(st) // decompressing the same file gives the same tar
	}
	return h, err
}

// spool decompresses (or copies) r into an unlinked temporary file, until ctx is done.
func spool(ctx context.Context, r io.Reader, compression, path, tempDir string) (*File, error) {
	if tempDir == "" {
		tempDir = os.TempDir()
	}
	src, err := Decompress(ctxio.Reader(ctx, r), compression)
	if err != nil {
		return nil, errors.Wrapf(err, "decompressing %s", path)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(tempDir, staging.SpoolPattern)
	if err != nil {
		return nil, errors.Wrapf(err, "creating a temporary file for %s", path)
	}
	name := tmp.Name()
	removed := os.Remove(name) == nil // the open file stays readable on Unix
	closeTmp := func() error {
		err := tmp.Close()
		if !removed {
			os.Remove(name)
		}
		return err
	}
	logrus.WithFields(logrus.Fields{"archive": path, "compression": compression, "spool": name}).Debug("spooling archive")
	n, err := io.Copy(tmp, src)
	if err != nil {
		closeTmp()
		if compression != "" {
			return nil, errors.Wrapf(err, "decompressing %s (%s)", path, compression)
		}
		return nil, errors.Wrapf(err, "reading %s", path)
	}
	return &File{ra: tmp, size: n, compression: compression, close: closeTmp}, nil
}

// spoolEntry is a spool shared by the opens of one compressed file.
type spoolEntry struct {
	ready chan struct{} // closed when file or err is set
	file  *File
	err   error
	users int
	timer *time.Timer // closes the spool after spoolLinger without users
}

var spools = struct {
	sync.Mutex
	m map[fileid.ID]*spoolEntry
}{m: map[fileid.ID]*spoolEntry{}}

// shared returns a handle on the spool of the file key identifies, creating it with
// makeSpool when no open one exists; without a key (the zero ID) every open spools on its own.
func shared(key fileid.ID, makeSpool func() (*File, error)) (*File, error) {
	if key.IsZero() {
		return makeSpool()
	}
	spools.Lock()
	e := spools.m[key]
	if e == nil {
		e = &spoolEntry{ready: make(chan struct{})}
		spools.m[key] = e
		spools.Unlock()
		e.file, e.err = makeSpool()
		spools.Lock()
		if e.err != nil {
			delete(spools.m, key)
		}
		close(e.ready)
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.users++
	spools.Unlock()
	<-e.ready
	if e.err != nil {
		release(key, e)
		return nil, e.err
	}
	once := sync.Once{}
	return &File{ra: e.file.ra, size: e.file.size, compression: e.file.compression, id: e.file.id, close: func() error {
		once.Do(func() { release(key, e) })
		return nil
	}}, nil
}

// sharedFile is shared for a regular file, which can be read again: when the open that was
// making the spool for this one too was cancelled, this one makes it, unless ctx is done too.
func sharedFile(ctx context.Context, key fileid.ID, makeSpool func() (*File, error)) (*File, error) {
	for {
		h, err := shared(key, makeSpool)
		if err == nil || ctx.Err() != nil || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return h, err
		}
	}
}

// release drops one user of a spool; the last one arms the timer that closes it.
func release(key fileid.ID, e *spoolEntry) {
	spools.Lock()
	defer spools.Unlock()
	e.users--
	if e.users > 0 || e.err != nil {
		return
	}
	e.timer = afterFunc(spoolLinger, func() {
		spools.Lock()
		defer spools.Unlock()
		if e.users > 0 || spools.m[key] != e {
			return
		}
		delete(spools.m, key)
		e.file.Close()
	})
}

// ForWriting returns how an archive written to path is compressed: as setting says (Gzip,
// Zstd or "none"), or, when setting is "", as the name asks (see CompressionForName). An
// unknown setting is an error wrapping types.ErrUsage.
func ForWriting(path, setting string) (string, error) {
	switch setting {
	case "":
		return CompressionForName(path), nil
	case Gzip, Zstd:
		return setting, nil
	case "none":
		return "", nil
	}
	return "", errors.Wrapf(types.ErrUsage, "unknown archive compression %q (want gzip, zstd or none)", setting)
}

// CompressionForName returns the compression a file name asks for by its suffix: Gzip for
// .gz and .tgz, Zstd for .zst and .tzst, "" otherwise.
func CompressionForName(name string) string {
	switch {
	case strings.HasSuffix(name, ".gz"), strings.HasSuffix(name, ".tgz"):
		return Gzip
	case strings.HasSuffix(name, ".zst"), strings.HasSuffix(name, ".tzst"):
		return Zstd
	}
	return ""
}
