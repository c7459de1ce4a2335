package resume

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
)

// recordBufferSize is the write buffer of a partial download: large enough that recording
// costs few system calls, small enough for six blobs at once.
const recordBufferSize = 256 << 10

// directRecordSize is the smallest piece Record writes to the file as it is, without copying
// it into the buffer first. The copy reads a stream in 256 KiB pieces, and the buffer took a
// copy of every downloaded byte (a 256 KiB write does not bypass a 256 KiB bufio.Writer).
const directRecordSize = 64 << 10

// Partial is the locked partial download of one blob: the bytes an earlier run kept (Kept,
// Reader) followed by what this run records (Record). Recording is best effort: a failed
// write stops it (and the kept file is dropped), but never fails the download.
type Partial struct {
	f      *os.File
	path   string
	digest digest.Digest
	kept   int64
	ow     *io.OffsetWriter // created by the first Record, appending after kept
	w      *bufio.Writer    // gathers smaller pieces; created for the first of them
	failed bool
}

// OpenPartial opens the partial download of d, a blob of size bytes, creating it empty when
// there is none, and locks it. It returns nil (and no error) when the blob is not worth
// keeping or does not fit the size limit, or when another process holds the file (it is
// fetching the same blob; this one then downloads without keeping anything). It first prunes
// the directory to make room for the blob.
func (s *Store) OpenPartial(d digest.Digest, size int64) (*Partial, error) {
	if err := d.Validate(); err != nil {
		return nil, errors.Wrapf(err, "invalid digest %q", d)
	}
	if size < MinSize || size > s.maxSize {
		return nil, nil
	}
	dir, err := s.subdir(blobsDir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, partialName(d))
	s.reserve(path, size)
	f, err := openLocked(path)
	if err != nil || f == nil {
		if f == nil && err == nil {
			logrus.WithFields(logrus.Fields{"digest": d}).Debug("another process is downloading this blob; not keeping a partial download")
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, errors.Wrapf(err, "reading %s", path)
	}
	if fi.Size() > 0 { // a new file is young already
		now := time.Now()
		_ = os.Chtimes(path, now, now) // in use: young, whatever its age
	}
	return &Partial{f: f, path: path, digest: d, kept: fi.Size()}, nil
}

// partialName is the file name of d's partial download.
func partialName(d digest.Digest) string { return d.Algorithm().String() + "-" + d.Encoded() }

// HasPartial reports whether an earlier run kept bytes of d, without opening, creating or
// locking anything: a destination that keeps blobs itself (an archive) opens the partial
// download only to read what an interrupted run left there.
func (s *Store) HasPartial(d digest.Digest) bool {
	fi, err := os.Lstat(filepath.Join(s.dir, blobsDir, partialName(d)))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// Kept returns the number of bytes kept by an earlier run (0 after Discard).
func (p *Partial) Kept() int64 { return p.kept }

// Reader returns the kept bytes.
func (p *Partial) Reader() io.Reader { return io.NewSectionReader(p.f, 0, p.kept) }

// Discard drops the kept bytes. It must be called before the first Record.
func (p *Partial) Discard() {
	p.kept = 0
	if err := p.f.Truncate(0); err != nil {
		p.fail(err)
	}
}

// Record appends b (the bytes following those kept and recorded so far).
func (p *Partial) Record(b []byte) {
	if p.failed {
		return
	}
	if p.ow == nil {
		p.ow = io.NewOffsetWriter(p.f, p.kept)
	}
	var err error
	switch {
	case len(b) >= directRecordSize && (p.w == nil || p.w.Buffered() == 0):
		_, err = p.ow.Write(b)
	default:
		if p.w == nil {
			p.w = bufio.NewWriterSize(p.ow, recordBufferSize)
		}
		_, err = p.w.Write(b)
	}
	if err != nil {
		p.fail(err)
	}
}

// fail stops recording and empties the file, so that no later run trusts a gap.
func (p *Partial) fail(err error) {
	if !p.failed {
		logrus.WithFields(logrus.Fields{"digest": p.digest, "error": err}).Warn("cannot keep the partial download for a later run; going on without")
	}
	p.failed = true
	_ = p.f.Truncate(0)
}

// Close releases the file: with complete (the whole blob went by) it is removed; otherwise
// what was recorded stays for a later run (an empty file is removed).
func (p *Partial) Close(complete bool) error {
	if complete || p.failed {
		err := os.Remove(p.path) // still under our lock
		p.f.Close()
		if err != nil {
			return errors.Wrapf(err, "removing %s", p.path)
		}
		return nil
	}
	var err error
	if p.w != nil {
		err = p.w.Flush()
	}
	if fi, serr := p.f.Stat(); err == nil && serr == nil && fi.Size() == 0 {
		_ = os.Remove(p.path) // nothing kept; still under our lock
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return errors.Wrapf(err, "closing %s", p.path)
}
