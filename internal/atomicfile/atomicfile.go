// Package atomicfile writes files so that they appear under their final name complete or not
// at all: a temp file in the same directory, fsync, optional digest check, rename. Blob
// writes start writeback while they stream (FlushBehind), so that the fsync is short.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/internal/verify"
)

// WriteBlob streams r into a temp file in dir, hashing as it goes, and renames it to the
// path returned by name(d) once the content matches expected (when given) and size (when
// >= 0). With trusted, r is verified by the caller (see verify.NewPutReader) and is not
// hashed again. It returns the digest and size. On any failure nothing is left behind.
func WriteBlob(dir string, r io.Reader, expected digest.Digest, size int64, trusted bool, name func(digest.Digest) string) (digest.Digest, int64, error) {
	vr, err := verify.NewPutReader(r, expected, size, trusted)
	if err != nil {
		return "", -1, err
	}
	f, err := staging.CreateTemp(dir, staging.BlobPattern)
	if err != nil {
		return "", -1, errors.Wrap(err, "creating temporary blob file")
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(NewFlushBehind(f, 0), vr)
	if err != nil {
		return "", -1, errors.Wrapf(err, "writing blob %s", expected)
	}
	d := vr.Digest()
	if err := f.Sync(); err != nil {
		return "", -1, errors.Wrap(err, "syncing blob file")
	}
	// Renamed while still open, so that it is never unlocked under its temporary name.
	final := name(d)
	if err := os.Rename(tmp, final); err != nil {
		return "", -1, errors.Wrapf(err, "storing blob %s", d)
	}
	ok = true
	if err := f.Close(); err != nil {
		return "", -1, errors.Wrap(err, "closing blob file")
	}
	return d, n, nil
}

// WriteFile atomically replaces path with data (temp file in the same directory, fsync, rename).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := staging.CreateTemp(filepath.Dir(path), staging.ReplacementPattern(path))
	if err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if werr == nil {
		werr = f.Chmod(perm)
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
