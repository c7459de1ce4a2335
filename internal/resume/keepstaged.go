package resume

import (
	"os"
	"path/filepath"
	"syscall"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
)

// KeepComplete moves the file at path, a complete and verified copy of blob d, into the store
// as d's partial download holding the whole blob, so that a later run reads it from disk
// instead of fetching it (it is verified again then, as all kept data is). It moves nothing,
// and reports false, when the blob is not worth keeping (under MinSize), larger than the
// store's size limit, not a regular file of this user's that only the user may write, or when
// another process is fetching d now (it holds the partial download's lock). The store is
// pruned first to make room, as for a new partial download. A store on another file system
// fails with an error matching syscall.EXDEV: nothing is copied.
func (s *Store) KeepComplete(path string, d digest.Digest) (bool, error) {
	if err := d.Validate(); err != nil {
		return false, errors.Wrapf(err, "invalid digest %q", d)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return false, errors.Wrapf(err, "keeping blob %s", d)
	}
	if !fi.Mode().IsRegular() || fi.Size() < MinSize || fi.Size() > s.maxSize {
		return false, nil
	}
	if err := checkPrivate(path, fi); err != nil {
		return false, errors.Wrapf(err, "keeping blob %s", d)
	}
	dir, err := s.subdir(blobsDir)
	if err != nil {
		return false, err
	}
	target := filepath.Join(dir, partialName(d))
	s.reserve(target, fi.Size())
	lock, err := openLocked(target) // what an earlier run kept of d, or a new empty file
	if err != nil || lock == nil {
		return false, err
	}
	defer lock.Close()
	err = os.Chmod(path, 0o600) // as private as the partial downloads written here
	if err == nil {
		err = os.Rename(path, target) // the lock stays on the file replaced, which nobody finds now
	}
	if err != nil {
		if ki, serr := lock.Stat(); serr == nil && ki.Size() == 0 {
			_ = os.Remove(target) // the empty file openLocked created; still under our lock
		}
		return false, errors.Wrapf(err, "keeping blob %s", d)
	}
	return true, nil
}

// KeepStaged moves the complete, verified blobs of MinSize or more in the Keeper's staging
// directory into the store (KeepComplete), for a destination closed without a commit: the
// copy was interrupted or failed, and the next run into any local destination, or from a
// registry into anything, then takes them from disk instead of fetching them again. digestOf
// names the blob a staging file holds, and rejects other files (temporary ones, which are
// incomplete). It returns how many blobs and bytes it kept.
//
// Call it after the destination's Syncer and the Keeper are closed: a blob still held (a
// partial download in flight) is not taken, and one whose move into staging was abandoned
// stays in the store as it is.
func (k *Keeper) KeepStaged(digestOf func(name string) (digest.Digest, bool)) (blobs int, bytes int64) {
	if k == nil {
		return 0, 0
	}
	entries, err := os.ReadDir(k.stagingDir)
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		d, ok := digestOf(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() < MinSize || !k.canStage() {
			continue
		}
		log := logrus.WithFields(logrus.Fields{"digest": d, "size": fi.Size()})
		kept, err := k.store.KeepComplete(filepath.Join(k.stagingDir, e.Name()), d)
		switch {
		case errors.Is(err, syscall.EXDEV):
			log.Debug("the resume directory is on another file system; not keeping the staged blobs")
			return blobs, bytes
		case err != nil:
			log.WithError(err).Debug("cannot keep the staged blob for a later run")
		case kept:
			log.Debug("kept a staged blob in the resume directory for a later run")
			blobs, bytes = blobs+1, bytes+fi.Size()
		}
	}
	return blobs, bytes
}

// canStage reports whether the store can rename files into the staging directory (usableLocked),
// creating the store's directory the first time: only once a blob worth keeping comes.
func (k *Keeper) canStage() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.usableLocked()
}
