package tarfile

import (
	"archive/tar"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/internal/tarappend"
)

// region is a blob being written into the place reserved for it in the tar (see tarappend).
type region struct {
	*tarappend.Region
	d      digest.Digest
	member string
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
	reg, err := w.tf.Reserve(&tar.Header{Typeflag: tar.TypeReg, Name: member, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
	if err != nil {
		return nil, -1, err
	}
	w.inflight[d] = true
	return &region{Region: reg, d: d, member: member}, -1, nil
}

// finish records the blob when fillErr is nil; otherwise the region is given up and fillErr
// returned.
func (w *Writer) finish(r *region, fillErr error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.inflight, r.d)
	if w.finished {
		if fillErr != nil {
			return fillErr
		}
		return w.usable()
	}
	if err := w.tf.Done(r.Region, fillErr); err != nil {
		return err
	}
	w.blobsMu.Lock()
	w.blobs[r.d] = storedBlob{member: r.member, offset: r.ContentOffset(), size: r.Size()}
	w.blobsMu.Unlock()
	return nil
}
