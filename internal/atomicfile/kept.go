package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/copybuf"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/types"
)

// StageKeptBlob is StageBlob writing into f, an open file that its caller keeps for a later
// run when the stream breaks off (a partial download of the resume store, see
// internal/resume), so that a blob pulled into a local destination is written once, not once
// as the partial download and once more as the staged blob (issue 18).
//
// f may hold the first kept bytes of the blob from an earlier run. They are not trusted: the
// stream's first kept bytes are compared with them, and the file is rewritten from the first
// byte that differs. resumed is how many of them matched, so were not written again.
//
// On success the file is fsynced and renamed to name(d) in the background, as StageBlob's
// temporary files are (and moved by copying when name(d) is on another file system); f is
// then the Syncer's, which closes it, also when Close discards it before its rename (the
// verified blob then stays where it is, for a later run). On failure f stays the caller's and
// holds what was written, for a later run to continue from, unless the stream did not verify
// (types.ErrDigestMismatch): f is then emptied.
func (s *Syncer) StageKeptBlob(f *os.File, kept int64, r io.Reader, expected digest.Digest, size int64, trusted bool, perm os.FileMode, name func(digest.Digest) string) (_ digest.Digest, _ int64, resumed int64, _ error) {
	t, resumed, err := writeKept(f, kept, r, expected, size, trusted, !s.off)
	if err != nil {
		return "", -1, 0, err
	}
	final := name(t.digest)
	if s.off {
		if err := t.publishMoving(final, perm, false); err != nil {
			return "", -1, 0, err
		}
		return t.digest, t.size, resumed, nil
	}
	keep := func() { _ = t.fb.Wait(); t.f.Close() }
	s.background(final, keep, func() error { return t.publishMoving(final, perm, true) })
	return t.digest, t.size, resumed, nil
}

// writeKept streams r through the verifier into f, skipping the leading bytes f already holds
// (see StageKeptBlob).
func writeKept(f *os.File, kept int64, r io.Reader, expected digest.Digest, size int64, trusted, flush bool) (*temp, int64, error) {
	vr, err := verify.NewPutReader(r, expected, size, trusted)
	if err != nil {
		return nil, 0, err
	}
	off, same, err := matchKept(f, kept, vr)
	var fb *FlushBehind
	if err == nil {
		fb = NewFlushBehindAt(f, off).SyncBehind()
		var w io.Writer = fb
		if !flush {
			w = io.NewOffsetWriter(f, off)
		}
		var n int64
		n, err = copybuf.Copy(w, vr)
		off += n
	}
	if err == nil && off < kept {
		err = f.Truncate(off) // the blob ended within what an earlier run left
	}
	if err != nil {
		if fb != nil {
			_ = fb.Wait()
		}
		if errors.Is(err, types.ErrDigestMismatch) {
			_ = f.Truncate(0) // no later run may take these bytes for the blob's
		}
		return nil, 0, errors.Wrapf(err, "writing blob %s", expected)
	}
	if flush {
		fb.Finish()
	}
	return &temp{f: f, fb: fb, digest: vr.Digest(), size: off}, same, nil
}

// matchKept reads the stream's first kept bytes and compares them with f's. At the first
// difference, f is cut there and the rest of the piece read is written in its place. It
// returns where the stream's next byte goes in f, and how many leading bytes matched.
func matchKept(f *os.File, kept int64, r io.Reader) (off, same int64, _ error) {
	if kept <= 0 {
		return 0, 0, nil
	}
	buf := make([]byte, 2*64<<10)
	got, have := buf[:64<<10], buf[64<<10:]
	for off < kept {
		n, err := io.ReadFull(r, got[:min(int64(len(got)), kept-off)])
		if n > 0 {
			m, rerr := f.ReadAt(have[:n], off)
			if rerr != nil && rerr != io.EOF {
				return off, off, errors.Wrap(rerr, "reading the kept part of the blob")
			}
			if i := mismatch(got[:n], have[:m]); i < n {
				if err := f.Truncate(off + int64(i)); err != nil {
					return off, off, err
				}
				if _, err := f.WriteAt(got[i:n], off+int64(i)); err != nil {
					return off, off, err
				}
				return off + int64(n), off + int64(i), nil
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return off, off, nil // the stream is shorter than what was kept; the copy sees the EOF
		}
		if err != nil {
			return off, off, err
		}
	}
	return off, off, nil
}

// mismatch returns the index of the first byte where a and b differ, or len(a) when b starts
// with a.
func mismatch(a, b []byte) int {
	n := min(len(a), len(b))
	if bytes.Equal(a[:n], b[:n]) {
		return n
	}
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// publishMoving is publish for a file outside final's directory, which it leaves where it
// is on failure: renamed when both are on one file system, else copied to a temporary file
// there (verified, synced like the original) and renamed, the original then removed.
func (t *temp) publishMoving(final string, perm os.FileMode, sync bool) error {
	defer t.f.Close()
	if err := t.settle(perm, sync); err != nil {
		_ = os.Remove(t.f.Name()) // what is on disk is not known; still ours: locked by its owner
		return err
	}
	err := os.Rename(t.f.Name(), final)
	if errors.Is(err, syscall.EXDEV) {
		var tmp *temp
		if _, err = t.f.Seek(0, io.SeekStart); err == nil {
			tmp, err = writeTemp(filepath.Dir(final), t.f, t.digest, t.size, false, sync)
		}
		if err == nil {
			err = tmp.publish(final, perm, sync)
		}
		if err == nil {
			_ = os.Remove(t.f.Name()) // still ours: locked by its owner
		}
	}
	return errors.Wrapf(err, "storing blob %s", t.digest)
}
