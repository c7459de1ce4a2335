package tarfile

import (
	"archive/tar"
	"bytes"
	"io"
	"strconv"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
)

// region is the place reserved in the tar for one blob member: its header, content and
// padding, [start, end). The header is written when the region is reserved; the content is
// written with WriteAt, so several regions fill at once while the Writer appends other
// members after them.
type region struct {
	w          *Writer
	d          digest.Digest
	member     string
	start, end int64
	contentOff int64
	size       int64
}

// reserve claims a region at the end of the tar for blob d of size bytes stored as member.
// It returns the size of d instead when d is stored already, and neither when another call
// is writing d right now.
func (w *Writer) reserve(d digest.Digest, size int64, member string) (*region, int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return nil, -1, err
	}
	if b, ok := w.blobs[d]; ok {
		return nil, b.size, nil
	}
	if w.inflight[d] {
		return nil, -1, nil
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: member, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
		return nil, -1, err
	}
	if err := w.buf.Flush(); err != nil { // w.offset is now where the file ends
		w.broken = errors.Wrap(err, "writing docker archive")
		return nil, -1, w.broken
	}
	r := &region{w: w, d: d, member: member, start: w.offset, contentOff: w.offset + int64(hdr.Len()), size: size}
	r.end = r.contentOff + size + padding(size)
	if _, err := w.file.WriteAt(hdr.Bytes(), r.start); err != nil {
		w.broken = errors.Wrap(err, "writing docker archive")
		return nil, -1, w.broken
	}
	if err := w.moveEndLocked(r.end); err != nil {
		return nil, -1, err
	}
	w.inflight[d] = true
	return r, -1, nil
}

// padding is what follows size bytes of content up to the next 512-byte block.
func padding(size int64) int64 { return (blockSize - size%blockSize) % blockSize }

const blockSize = 512

var copyBufs = sync.Pool{New: func() any { return make([]byte, 256<<10) }}

// fill writes the content (exactly r.size bytes from src) and the padding into the region.
func (r *region) fill(src io.Reader) error {
	buf := copyBufs.Get().([]byte)
	defer copyBufs.Put(buf)
	dst := &regionWriter{w: atomicfile.NewFlushBehindAt(r.w.file, r.contentOff), left: r.size}
	n, err := io.CopyBuffer(dst, src, buf)
	if err != nil {
		return err
	}
	if n != r.size { // the verifying reader reports a short stream first; this is a backstop
		return errors.Errorf("blob %s: %d bytes written, %d expected", r.d, n, r.size)
	}
	if pad := padding(r.size); pad > 0 {
		if _, err := r.w.file.WriteAt(make([]byte, pad), r.contentOff+r.size); err != nil {
			return err
		}
	}
	return nil
}

// regionWriter refuses bytes beyond the region's content.
type regionWriter struct {
	w    io.Writer
	left int64
}

func (rw *regionWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > rw.left {
		return 0, errors.New("blob longer than its size")
	}
	n, err := rw.w.Write(p)
	rw.left -= int64(n)
	return n, err
}

// finish records the blob when fillErr is nil; otherwise it gives the region up (see
// discard) and returns fillErr.
func (w *Writer) finish(r *region, fillErr error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.inflight, r.d)
	if fillErr == nil {
		if err := w.usable(); err != nil {
			return err
		}
		w.blobsMu.Lock()
		w.blobs[r.d] = storedBlob{member: r.member, offset: r.contentOff, size: r.size}
		w.blobsMu.Unlock()
		return nil
	}
	if w.usable() == nil {
		if err := r.discardLocked(); err != nil {
			w.broken = errors.Wrapf(err, "giving up the failed blob %s", r.d)
		}
	}
	return fillErr
}

// discardLocked removes a failed region from the archive: when it is the last thing in the
// tar, the tar is cut back to its start; otherwise its header is replaced by one for a plain
// file named .imgcopy-discarded-<offset> that spans the region, so that the tar stays valid
// and no reader takes the partial bytes for the blob. Such a file only remains when a blob
// failed and the archive was still committed, which a copy never does (it fails as a whole).
func (r *region) discardLocked() error {
	w := r.w
	if err := w.buf.Flush(); err != nil {
		return err
	}
	if r.end == w.offset {
		if err := w.file.Truncate(r.start); err != nil {
			return err
		}
		return w.moveEndLocked(r.start)
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	name := ".imgcopy-discarded-" + r.d.Encoded()[:12] + "-" + itoa(r.start)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: r.end - r.start - blockSize, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatGNU}); err != nil {
		return err
	}
	if hdr.Len() != blockSize {
		return errors.Errorf("discarded member header is %d bytes", hdr.Len())
	}
	_, err := w.file.WriteAt(hdr.Bytes(), r.start)
	return err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// moveEndLocked makes end the place where the next member is appended. The buffer must be
// empty.
func (w *Writer) moveEndLocked(end int64) error {
	if _, err := w.file.Seek(end, io.SeekStart); err != nil {
		w.broken = errors.Wrap(err, "writing docker archive")
		return w.broken
	}
	w.offset = end
	w.buf.Reset(&countingWriter{w: atomicfile.NewFlushBehind(w.file, end), n: &w.offset})
	w.tw = tar.NewWriter(w.buf)
	return nil
}
