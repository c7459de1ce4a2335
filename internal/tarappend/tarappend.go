// Package tarappend writes a tar file member by member, for the archive destinations
// (docker-archive and oci-archive). Members of known size can be written concurrently: each
// gets a region of the file reserved for it (header, content, padding) and is filled with
// WriteAt while later members are appended after it, so parallel downloads go straight into
// the archive instead of through temporary files. A member that fails leaves no member
// behind under its name: the tar is cut back when it is the last one, and otherwise its
// region becomes a file named .imgcopy-discarded-<offset>, which keeps the tar valid.
//
// Every method except Region.Fill must be called by one goroutine at a time (the archive
// writers hold their lock); Fill may run concurrently with anything but Done of its region.
package tarappend

import (
	"archive/tar"
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/copybuf"
)

const blockSize = 512

// File is a tar being written to an *os.File.
type File struct {
	f      *os.File
	buf    *bufio.Writer
	tw     *tar.Writer
	offset int64 // the end of what was flushed to f; where the next member starts
	broken error // set when the tar could not be kept consistent after a failure

	// SyncBehind makes Region.Fill start data syncs of the file while it writes (see
	// atomicfile.FlushBehind.SyncBehind), for a tar that is fsynced once finished.
	SyncBehind bool
}

// New starts an empty tar at the start of f.
func New(f *os.File) *File {
	t := &File{f: f}
	t.moveEnd(0)
	return t
}

// Broken returns the error that made the tar unusable, or nil.
func (t *File) Broken() error { return t.broken }

// WriteHeader appends a member without content (a directory, a link).
func (t *File) WriteHeader(hdr *tar.Header) error {
	if t.broken != nil {
		return t.broken
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		t.broken = errors.Wrapf(err, "writing %s", hdr.Name)
		return t.broken
	}
	return nil
}

// Append appends a member with hdr.Size bytes read from r and returns the offset of its
// content in the file. On failure the tar is cut back to where it was.
func (t *File) Append(hdr *tar.Header, r io.Reader) (int64, error) {
	if t.broken != nil {
		return -1, t.broken
	}
	if err := t.buf.Flush(); err != nil {
		t.broken = errors.Wrap(err, "writing the archive")
		return -1, t.broken
	}
	start := t.offset
	err := t.tw.WriteHeader(hdr)
	var contentOff int64
	if err == nil {
		contentOff = t.offset + int64(t.buf.Buffered())
		_, err = io.Copy(t.tw, failWhole{r})
	}
	if err == nil {
		err = t.tw.Flush()
	}
	if err != nil {
		// Everything before start was flushed; moveEnd drops the buffered part of the member.
		if terr := t.f.Truncate(start); terr != nil {
			t.broken = errors.Wrapf(terr, "cutting off the failed member %s", hdr.Name)
		} else {
			t.moveEnd(start)
		}
		return -1, err
	}
	return contentOff, nil
}

// ReadAt reads back part of what was written.
func (t *File) ReadAt(p []byte, off int64) (int, error) {
	if err := t.buf.Flush(); err != nil {
		t.broken = errors.Wrap(err, "writing the archive")
		return 0, t.broken
	}
	return t.f.ReadAt(p, off)
}

// Close writes the end of the archive (it does not close or sync the file).
func (t *File) Close() error {
	if t.broken != nil {
		return t.broken
	}
	if err := t.tw.Close(); err != nil {
		return err
	}
	return t.buf.Flush()
}

// moveEnd makes end the place where the next member is appended, dropping anything
// buffered. A failure makes the tar unusable.
func (t *File) moveEnd(end int64) {
	if _, err := t.f.Seek(end, io.SeekStart); err != nil {
		t.broken = errors.Wrap(err, "writing the archive")
		return
	}
	t.offset = end
	w := &countingWriter{w: atomicfile.NewFlushBehind(t.f, end), n: &t.offset}
	if t.buf == nil {
		t.buf = bufio.NewWriterSize(w, 1<<20)
	} else {
		t.buf.Reset(w)
	}
	t.tw = tar.NewWriter(t.buf)
}

type countingWriter struct {
	w io.Writer
	n *int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

// failWhole passes reads through, except that a read returning an error hands over no bytes:
// a source that detects a problem (a digest or size mismatch) reports it before the tar
// writer sees more bytes than the member holds, which it would blame instead.
type failWhole struct{ r io.Reader }

func (f failWhole) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF {
		return 0, err
	}
	return n, err
}

// Region is the place reserved for one member.
type Region struct {
	t          *File
	name       string
	start, end int64
	contentOff int64
	size       int64

	// OnWritten, when set before Fill, is called by Fill after each write with how many bytes
	// of content are in the file so far.
	OnWritten func(n int64)
}

// Reserve claims a region at the end of the tar for a member of hdr.Size bytes and writes
// its header there. The caller fills it with Fill and then calls Done.
func (t *File) Reserve(hdr *tar.Header) (*Region, error) {
	if t.broken != nil {
		return nil, t.broken
	}
	var h bytes.Buffer
	if err := tar.NewWriter(&h).WriteHeader(hdr); err != nil {
		return nil, errors.Wrapf(err, "writing %s", hdr.Name)
	}
	if err := t.buf.Flush(); err != nil { // t.offset is now where the file ends
		t.broken = errors.Wrap(err, "writing the archive")
		return nil, t.broken
	}
	r := &Region{t: t, name: hdr.Name, start: t.offset, contentOff: t.offset + int64(h.Len()), size: hdr.Size}
	r.end = r.contentOff + hdr.Size + padding(hdr.Size)
	if _, err := t.f.WriteAt(h.Bytes(), r.start); err != nil {
		t.broken = errors.Wrap(err, "writing the archive")
		return nil, t.broken
	}
	if t.moveEnd(r.end); t.broken != nil {
		return nil, t.broken
	}
	return r, nil
}

// ContentOffset is where the member's content starts in the file.
func (r *Region) ContentOffset() int64 { return r.contentOff }

// Size is the member's content size.
func (r *Region) Size() int64 { return r.size }

// padding is what follows size bytes of content up to the next block.
func padding(size int64) int64 { return (blockSize - size%blockSize) % blockSize }

// Fill writes exactly the member's size in bytes from src, and the padding.
func (r *Region) Fill(src io.Reader) (err error) {
	fb := atomicfile.NewFlushBehindAt(r.t.f, r.contentOff)
	if r.t.SyncBehind {
		fb.SyncBehind()
		defer func() {
			if serr := fb.Wait(); err == nil {
				err = serr
			}
		}()
	}
	dst := &regionWriter{w: fb, left: r.size, size: r.size, onWritten: r.OnWritten}
	n, err := copybuf.Copy(dst, failWhole{src})
	if err != nil {
		return err
	}
	if n != r.size {
		return errors.Errorf("%s: %d bytes, %d expected", r.name, n, r.size)
	}
	if pad := padding(r.size); pad > 0 {
		if _, err := r.t.f.WriteAt(make([]byte, pad), r.contentOff+r.size); err != nil {
			return err
		}
	}
	return nil
}

// regionWriter refuses bytes beyond the region's content.
type regionWriter struct {
	w         io.Writer
	left      int64
	size      int64
	onWritten func(n int64)
}

func (rw *regionWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > rw.left {
		return 0, errors.New("member longer than its size")
	}
	n, err := rw.w.Write(p)
	rw.left -= int64(n)
	if rw.onWritten != nil && n > 0 {
		rw.onWritten(rw.size - rw.left)
	}
	return n, err
}

// Done ends a region: with fillErr nil the member stands; otherwise the region is given up
// (see the package documentation) and fillErr is returned.
func (t *File) Done(r *Region, fillErr error) error {
	if fillErr == nil {
		return t.broken
	}
	if t.broken == nil {
		if err := t.discard(r); err != nil {
			t.broken = errors.Wrapf(err, "giving up the failed member %s", r.name)
		}
	}
	return fillErr
}

func (t *File) discard(r *Region) error {
	if err := t.buf.Flush(); err != nil {
		return err
	}
	if r.end == t.offset { // nothing after it: cut it off
		if err := t.f.Truncate(r.start); err != nil {
			return err
		}
		t.moveEnd(r.start)
		return t.broken
	}
	var h bytes.Buffer
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: ".imgcopy-discarded-" + strconv.FormatInt(r.start, 10),
		Size: r.end - r.start - blockSize, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatGNU}
	if err := tar.NewWriter(&h).WriteHeader(hdr); err != nil {
		return err
	}
	if h.Len() != blockSize {
		return errors.Errorf("discarded member header is %d bytes", h.Len())
	}
	_, err := t.f.WriteAt(h.Bytes(), r.start)
	return err
}

// Name is the member's name.
func (r *Region) Name() string { return r.name }
