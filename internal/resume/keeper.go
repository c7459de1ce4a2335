package resume

import (
	"io"
	"os"
	"path/filepath"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/types"
)

// Keeper lets a local destination (an OCI layout, a dir:) stage the blobs it receives in the
// store's partial downloads, and so implement types.PartialBlobKeeper: a blob pulled from a
// registry is then written once, where it had been written twice, as the source's partial
// download and as the destination's staged file (issue 18: a 1 GiB pull into a layout took
// 1.40 s, 1.22 s written once). When the copy breaks off, what arrived stays in the store, as
// any partial download, for a later run; a complete blob leaves the store by a rename into
// the destination's staging directory, so only a store on the destination's file system is
// used, and comes back the same way when the destination is closed without a commit
// (KeepStaged).
type Keeper struct {
	store      *Store
	stagingDir string

	mu     sync.Mutex
	probed bool                       // whether usable was found out
	usable bool                       // files of the store can be renamed into stagingDir
	open   map[digest.Digest]*Partial // asked about (Keeps), not yet taken by Stage
}

// NewKeeper returns a Keeper staging into the store opts describe, or nil when resuming is
// off. Whether the store can rename files into stagingDir (is on the same file system) is
// found out when the first blob worth keeping comes; nothing is kept when it cannot.
func NewKeeper(opts *types.ResumeOptions, stagingDir string) *Keeper {
	s := New(opts)
	if s == nil {
		return nil
	}
	return &Keeper{store: s, stagingDir: stagingDir, open: map[digest.Digest]*Partial{}}
}

// usableLocked reports whether the store can rename files into the staging directory,
// trying it the first time. The caller holds k.mu.
func (k *Keeper) usableLocked() bool {
	if !k.probed {
		k.probed = true
		dir, err := k.store.subdir(blobsDir)
		k.usable = err == nil && canRename(dir, k.stagingDir)
	}
	return k.usable
}

// canRename tries a rename from one directory to the other.
func canRename(from, to string) bool {
	f, err := os.CreateTemp(from, ".rename-probe-*")
	if err != nil {
		return false
	}
	f.Close()
	dest := filepath.Join(to, filepath.Base(f.Name()))
	if err := os.Rename(f.Name(), dest); err != nil {
		os.Remove(f.Name())
		logrus.WithFields(logrus.Fields{"store": from, "error": err}).Debug("the resume directory is on another file system; the destination keeps no partial blobs")
		return false
	}
	os.Remove(dest)
	return true
}

// Keeps implements types.PartialBlobKeeper.KeepsPartialBlob for a Keeper's destination: true
// for a blob the store would keep a partial download of, with the bytes an earlier run kept.
// The blob's partial download stays open (locked) for Stage.
func (k *Keeper) Keeps(info types.BlobInfo) (bool, io.ReadCloser, int64) {
	if k == nil || info.Digest == "" || info.Size < MinSize {
		return false, nil, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.open[info.Digest]
	if p == nil {
		if !k.usableLocked() {
			return false, nil, 0
		}
		var err error
		if p, err = k.store.OpenPartial(info.Digest, info.Size); err != nil || p == nil {
			if err != nil {
				logrus.WithFields(logrus.Fields{"digest": info.Digest, "error": err}).Debug("cannot stage the blob in the resume directory")
			}
			return false, nil, 0
		}
		k.open[info.Digest] = p
	}
	if p.Kept() == 0 {
		return true, nil, 0
	}
	return true, io.NopCloser(p.Reader()), p.Kept()
}

// Stage stages blob info from r through s into the partial download Keeps opened for it
// (atomicfile.Syncer.StageKeptBlob), continuing what an earlier run kept unless
// opts.NoResume, and reports the bytes it did not write again to opts.Resumed. ok is false
// when Keeps was not asked about the blob (or said no): the caller stages it as usual. After
// a failure, what was written stays for a later run (unless it did not verify).
func (k *Keeper) Stage(s *atomicfile.Syncer, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions, perm os.FileMode, name func(digest.Digest) string) (_ digest.Digest, _ int64, ok bool, _ error) {
	if k == nil {
		return "", -1, false, nil
	}
	k.mu.Lock()
	p := k.open[info.Digest]
	delete(k.open, info.Digest)
	k.mu.Unlock()
	if p == nil {
		return "", -1, false, nil
	}
	if opts.NoResume && p.Kept() > 0 {
		p.Discard()
	}
	dg, size, resumed, err := s.StageKeptBlob(p.File(), p.Kept(), r, info.Digest, info.Size, opts.Verified, perm, name)
	if err != nil {
		_ = p.Close(false) // emptied by StageKeptBlob when it did not verify
		return "", -1, true, err
	}
	if resumed > 0 && opts.Resumed != nil {
		opts.Resumed(resumed)
	}
	return dg, size, true, nil // p's file is the Syncer's now
}

// Close releases the partial downloads Keeps opened and Stage did not use; they stay as they
// are for a later run.
func (k *Keeper) Close() {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for d, p := range k.open {
		_ = p.Close(false)
		delete(k.open, d)
	}
}

// File returns the partial download's open, locked file, for a destination staging the blob
// in it (Keeper). It holds Kept bytes; Record must not be used as well.
func (p *Partial) File() *os.File { return p.f }
