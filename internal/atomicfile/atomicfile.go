// Package atomicfile writes files so that they appear under their final name complete or not
// at all: a temp file in the same directory, fsync, optional digest check, rename. Blob
// writes start writeback while they stream (FlushBehind), so that the fsync is short.
//
// Blobs are staged through a Syncer, which does the fsync and rename of each in the
// background, off the copy's path, and waits for them all before anything may refer to them.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/copybuf"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/internal/verify"
)

// temp is a verified blob in an open (locked, see staging.CreateTemp) temporary file.
type temp struct {
	f      *os.File
	fb     *FlushBehind
	digest digest.Digest
	size   int64
}

// writeTemp streams r into a new temporary file in dir through the verifier; with flush it
// starts writeback and data syncs as it goes (FlushBehind), the tail included. On failure
// nothing is left.
func writeTemp(dir string, r io.Reader, expected digest.Digest, size int64, trusted, flush bool) (*temp, error) {
	vr, err := verify.NewPutReader(r, expected, size, trusted)
	if err != nil {
		return nil, err
	}
	f, err := staging.CreateTemp(dir, staging.BlobPattern)
	if err != nil {
		return nil, errors.Wrap(err, "creating temporary blob file")
	}
	var w io.Writer = f
	fb := NewFlushBehind(f, 0).SyncBehind()
	if flush {
		w = fb
	}
	n, err := copybuf.Copy(w, vr) // not io.Copy's 32 KiB pieces (issue 18)
	if err != nil {
		_ = fb.Wait() // the blob is given up
		f.Close()
		os.Remove(f.Name())
		return nil, errors.Wrapf(err, "writing blob %s", expected)
	}
	if flush {
		fb.Finish()
	}
	return &temp{f: f, fb: fb, digest: vr.Digest(), size: n}, nil
}

// publish gives the file perm (unless 0), fsyncs it (with sync) and renames it to final while
// it is still open, so that it is never unlocked under its temporary name, then closes it. On
// failure the temporary file is removed.
func (t *temp) publish(final string, perm os.FileMode, sync bool) error {
	tmp := t.f.Name()
	err := t.settle(perm, sync)
	if err == nil {
		if err = os.Rename(tmp, final); err != nil {
			err = errors.Wrapf(err, "storing blob %s", t.digest)
		}
	}
	if err != nil {
		t.f.Close()
		os.Remove(tmp)
		return err
	}
	return errors.Wrap(t.f.Close(), "closing blob file")
}

// settle waits for the file's background data syncs, gives it perm (unless 0) and fsyncs it
// (with sync): what comes before its rename.
func (t *temp) settle(perm os.FileMode, sync bool) error {
	err := t.fb.Wait()
	if err == nil && perm != 0 {
		err = t.f.Chmod(Mode(perm))
	}
	if err == nil && sync {
		err = errors.Wrap(t.f.Sync(), "syncing blob file")
	}
	return err
}

// discard closes and removes the temporary file.
func (t *temp) discard() {
	_ = t.fb.Wait() // the blob is given up
	t.f.Close()
	os.Remove(t.f.Name())
}

// WriteFile atomically replaces path with data (temp file in the same directory, fsync, rename).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, true)
}

func writeFile(path string, data []byte, perm os.FileMode, sync bool) error {
	f, err := staging.CreateTemp(filepath.Dir(path), staging.ReplacementPattern(path))
	if err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil && sync {
		werr = f.Sync()
	}
	if werr == nil {
		werr = f.Chmod(Mode(perm))
	}
	if werr == nil {
		werr = os.Rename(tmp, path) // while open (locked), see staging.CreateTemp
	}
	if werr != nil {
		f.Close()
		os.Remove(tmp)
		return errors.Wrapf(werr, "writing %s", path)
	}
	return f.Close()
}
