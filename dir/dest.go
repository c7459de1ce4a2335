package dir

import (
	"context"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

// ErrNotImageDir is types.ErrNotImageDir, returned (wrapped) when the destination directory
// is not empty and does not hold a dir: image; skopeo refuses to overwrite such a directory too.
var ErrNotImageDir = types.ErrNotImageDir

var _ types.ImageDestination = (*destination)(nil)

// destination writes an image into a directory. Blobs go straight to their final names
// (temp file, fsync, digest check, rename), manifests are kept in memory until Commit, and
// manifest.json is written last. Files of a previous image that the new one does not use are
// removed after Commit; files this destination created are removed again when it is closed
// without a successful Commit, so the previous image (or the empty directory) stays intact.
type destination struct {
	ref        reference
	root       *os.Root
	staging    *staging.Dir // temporary blob files, locked while this destination lives
	createdDir bool
	previous   map[string]bool // files present when the destination was opened
	// leftover is set when the directory held only what an interrupted copy left (blobs it
	// had verified, no image): with resuming on, those blobs are reused as kept (issue 17).
	leftover bool

	mu        sync.Mutex
	created   map[string]bool // files this destination created
	used      map[string]bool // previous files the new image keeps
	manifests map[string][]byte
	committed bool
}

func newImageDestination(r reference, resume bool) (*destination, error) {
	d := &destination{ref: r, previous: map[string]bool{}, created: map[string]bool{}, used: map[string]bool{}, manifests: map[string][]byte{}}
	staging.RemoveAbandoned(r.path) // what dead writers left, whatever the flags
	entries, err := os.ReadDir(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(r.path, 0o755); err != nil {
			return nil, errors.Wrapf(err, "creating directory for %s", types.ImageName(r))
		}
		d.createdDir = true
	case err != nil:
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
	case len(entries) > 0:
		d.leftover = resume && onlyLeftovers(entries)
		if err := checkOverwritable(r); err != nil && !onlyLeftovers(entries) {
			return nil, err
		}
		for _, e := range entries {
			if !e.IsDir() {
				d.previous[e.Name()] = true
			}
		}
		logrus.WithField("path", r.path).Debug("replacing the image in an existing dir: directory")
	}
	if d.root, err = os.OpenRoot(r.path); err != nil {
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
	}
	if d.staging, err = staging.NewDir(r.path); err != nil {
		d.root.Close()
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	return d, nil
}

// onlyLeftovers reports whether entries are what an interrupted copy leaves in a new dir:
// blobs it verified (named by their digest) and staging directories, but no image files.
func onlyLeftovers(entries []os.DirEntry) bool {
	for _, e := range entries {
		if staging.IsTemporary(e.Name()) {
			continue
		}
		if e.IsDir() || digest.NewDigestFromEncoded(digest.SHA256, e.Name()).Validate() != nil {
			return false
		}
	}
	return true
}

// checkOverwritable accepts a non-empty directory only when it holds a dir: image.
func checkOverwritable(r reference) error {
	b, err := os.ReadFile(r.file(versionFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errors.Wrapf(err, "reading %s", r.file(versionFile))
	}
	if err != nil || string(b) != version {
		return errors.Wrapf(ErrNotImageDir, "%s is not empty and has no %q file with %q", r.path, versionFile, strings.TrimSpace(version))
	}
	return nil
}

// Reference implements types.ImageDestination.
func (d *destination) Reference() types.ImageReference { return d.ref }

// Properties implements types.ImageDestination. A directory stores any manifest as it is,
// foreign layers as references.
func (d *destination) Properties() types.DestinationProperties {
	return types.DestinationProperties{AcceptsIndex: true, ConcurrentBlobs: true, AcceptsForeignLayerURLs: true}
}

// TryReusingBlob implements types.ImageDestination; it answers from the files present.
func (d *destination) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	if info.Digest == "" {
		return types.ReusedBlob{}, false, errors.New("checking for a blob with an unknown digest")
	}
	if !opts.AcceptsOriginal() {
		return types.ReusedBlob{}, false, nil // another compression is required
	}
	name, err := blobName(info.Digest)
	if err != nil {
		return types.ReusedBlob{}, false, err
	}
	fi, err := d.root.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return types.ReusedBlob{}, false, nil
	}
	if err != nil {
		return types.ReusedBlob{}, false, errors.Wrapf(err, "checking for blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	if !fi.Mode().IsRegular() || (info.Size >= 0 && fi.Size() != info.Size) {
		return types.ReusedBlob{}, false, nil // not a usable copy; PutBlob replaces it
	}
	d.keep(name)
	logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": fi.Size(), "kept": d.leftover}).Debug("blob reused")
	return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: fi.Size(), MediaType: info.MediaType}, Kept: d.leftover}, true, nil
}

// keep records that name belongs to the image being written.
func (d *destination) keep(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.previous[name] {
		d.used[name] = true
	} else {
		d.created[name] = true
	}
}

// PutBlob implements types.ImageDestination.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	var name string
	dg, size, err := atomicfile.WriteBlob(d.staging.Path, ctxio.Reader(ctx, r), info.Digest, info.Size, opts.Verified, func(dg digest.Digest) string {
		name = dg.Encoded()
		return d.ref.file(name)
	})
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	d.keep(name)
	if err := d.root.Chmod(name, 0o644); err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", dg, types.ImageName(d.ref))
	}
	logrus.WithFields(logrus.Fields{"digest": dg, "size": size}).Debug("blob stored")
	return types.BlobInfo{Digest: dg, Size: size, MediaType: info.MediaType}, nil
}

// PutManifest implements types.ImageDestination. Manifests are written by Commit.
func (d *destination) PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error {
	name, err := manifestName(instance)
	if err != nil {
		return errors.Wrapf(err, "writing manifest to %s", types.ImageName(d.ref))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.manifests[name] = append([]byte(nil), body...)
	return nil
}

// Commit implements types.ImageDestination: instance manifests, the version file and then
// manifest.json, the file that makes the image visible; then files of the previous image
// the new one does not use are removed.
func (d *destination) Commit(ctx context.Context, opts types.CommitOptions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	top, ok := d.manifests[manifestFile]
	if !ok {
		return errors.Errorf("committing %s: no manifest was written", types.ImageName(d.ref))
	}
	for name, body := range d.manifests {
		if name != manifestFile {
			if err := d.writeFile(name, body); err != nil {
				return err
			}
		}
	}
	if err := d.writeFile(versionFile, []byte(version)); err != nil {
		return err
	}
	if err := d.writeFile(manifestFile, top); err != nil {
		return err
	}
	d.committed = true
	if err := d.removeStaging(); err != nil {
		logrus.WithError(err).Warn("removing the staging directory")
	}
	for name := range d.previous {
		if !d.used[name] {
			if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				logrus.WithField("file", d.ref.file(name)).Warnf("removing a file of the replaced image: %v", err)
			}
		}
	}
	return nil
}

// writeFile atomically writes one metadata file; the caller holds d.mu.
func (d *destination) writeFile(name string, body []byte) error {
	if err := atomicfile.WriteFile(d.ref.file(name), body, 0o644); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	if d.previous[name] {
		d.used[name] = true
	} else {
		d.created[name] = true
	}
	return nil
}

// removeStaging removes the staging directory once; the caller holds d.mu.
func (d *destination) removeStaging() error {
	if d.staging == nil {
		return nil
	}
	err := d.staging.Remove()
	d.staging = nil
	return err
}

// Close implements types.ImageDestination. Without a successful Commit it removes every file
// it created, and the directory itself when it created that too.
func (d *destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var firstErr error
	if !d.committed {
		for name := range d.created {
			if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
				firstErr = errors.Wrapf(err, "removing %s after an incomplete write", d.ref.file(name))
			}
		}
	}
	if err := d.removeStaging(); err != nil && firstErr == nil {
		firstErr = err
	}
	if err := d.root.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if !d.committed && d.createdDir {
		os.Remove(d.ref.path) // only succeeds when empty; a leftover directory is harmless
	}
	return firstErr
}
