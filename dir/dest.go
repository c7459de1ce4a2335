package dir

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

// ErrNotImageDir is types.ErrNotImageDir, returned (wrapped) when the destination directory
// is not empty and does not hold a dir: image; skopeo refuses to overwrite such a directory too.
var ErrNotImageDir = types.ErrNotImageDir

var _ types.ImageDestination = (*destination)(nil)

// destination writes an image into a directory. Blobs are verified into a staging directory
// inside it (temp file, fsync, digest check, rename) and manifests kept in memory; Commit
// writes the version file, moves the blobs to their final names, then writes the manifests,
// manifest.json last. Files of a previous image that the new one does not use are removed
// after Commit; files Commit created are removed again when it fails, and Close removes the
// staging directory (its large verified blobs move to the resume directory), so the previous
// image (or the empty directory) stays intact. The staging directory of a killed run is
// removed by the next one (internal/staging), which first takes over the blobs it had
// verified when resuming is on (issue 17).
type destination struct {
	ref        reference
	root       *os.Root
	createdDir bool
	previous   map[string]bool    // files present when the destination was opened
	stagingDir *staging.Dir       // locked while this destination lives
	syncer     *atomicfile.Syncer // fsyncs and names staged blobs in the background
	keeper     *resume.Keeper     // stages large blobs as partial downloads; nil when resuming is off
	staging    string             // stagingDir.Path

	mu        sync.Mutex
	staged    map[string]int64 // blob file name -> size, in the staging directory
	kept      map[string]int64 // blob file name -> size, staged by an interrupted copy; staged once reused
	created   map[string]bool  // files this destination created
	used      map[string]bool  // previous files the new image keeps
	manifests map[string][]byte
	committed bool
}

func newImageDestination(r reference, resumeOpts *types.ResumeOptions, durable bool) (*destination, error) {
	d := &destination{ref: r, syncer: atomicfile.NewSyncer(durable), previous: map[string]bool{}, staged: map[string]int64{}, kept: map[string]int64{},
		created: map[string]bool{}, used: map[string]bool{}, manifests: map[string][]byte{}}
	staging.RemoveDead(r.path, nil) // temporary files of dead writers (staging directories: below)
	entries, err := os.ReadDir(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(r.path, 0o755); err != nil {
			return nil, errors.Wrapf(err, "creating directory for %s", types.ImageName(r))
		}
		d.createdDir = true
	case err != nil:
		return nil, errors.Wrapf(pathformat.NotDirectory("dir", r.path, true, err), "opening %s", types.ImageName(r))
	case len(entries) > 0:
		if err := checkOverwritable(r); err != nil && !onlyTemporary(entries) {
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
	if d.stagingDir, err = staging.NewDir(r.path); err != nil {
		d.root.Close()
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	d.staging = d.stagingDir.Path
	d.takeAbandoned(resumeOpts != nil)
	d.keeper = resume.NewKeeper(resumeOpts, d.staging)
	return d, nil
}

// onlyTemporary reports whether entries are only what an interrupted copy leaves in a new
// directory (staging directories and temporary files), so that it may be written to.
func onlyTemporary(entries []os.DirEntry) bool {
	for _, e := range entries {
		if !staging.IsTemporary(e.Name()) {
			return false
		}
	}
	return true
}

// takeAbandoned removes the staging directories that dead writers left; with resume, the
// blobs they had verified (only complete, verified blobs get their digest name in staging,
// see atomicfile.Syncer) move into this destination's staging first, to be reused.
func (d *destination) takeAbandoned(resume bool) {
	var take func(name string) bool
	if resume {
		take = func(name string) bool { _, ok := stagedDigest(name); return ok }
	}
	for name, size := range staging.TakeAbandoned(d.ref.path, d.staging, take) {
		d.kept[name] = size
	}
}

// stagedDigest returns the digest of the blob a staging file holds, named as blobName names
// it (the encoded digest alone: sha256 or sha512, told apart by length); false for other
// files (temporary ones are incomplete).
func stagedDigest(name string) (digest.Digest, bool) {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		if d := digest.NewDigestFromEncoded(alg, name); d.Validate() == nil {
			return d, true
		}
	}
	return "", false
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
	d.mu.Lock()
	size, staged := d.staged[name]
	keptSize, kept := d.kept[name]
	kept = !staged && kept && (info.Size < 0 || keptSize == info.Size)
	if kept {
		size, staged = keptSize, true
		d.staged[name] = keptSize
		delete(d.kept, name)
		logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": size}).Debug("reusing a blob an interrupted copy staged")
	}
	d.mu.Unlock()
	if staged && (info.Size < 0 || size == info.Size) {
		return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: size, MediaType: info.MediaType}, Kept: kept}, true, nil
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
	logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": fi.Size()}).Debug("blob reused")
	return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: fi.Size(), MediaType: info.MediaType}}, true, nil
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

// PutBlob implements types.ImageDestination. The blob is verified into the staging directory
// and moved to its final name by Commit.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	var name string
	stagedAs := func(dg digest.Digest) string {
		name = dg.Encoded()
		return filepath.Join(d.staging, name)
	}
	dg, size, kept, err := d.keeper.Stage(d.syncer, ctxio.Reader(ctx, r), info, opts, 0o644, stagedAs)
	if !kept {
		dg, size, err = d.syncer.StageBlob(d.staging, ctxio.Reader(ctx, r), info.Digest, info.Size, opts.Verified, 0o644, stagedAs)
	}
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	d.mu.Lock()
	d.staged[name] = size
	d.mu.Unlock()
	logrus.WithFields(logrus.Fields{"digest": dg, "size": size}).Debug("blob staged")
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

// Commit implements types.ImageDestination: the version file (so that a directory a killed
// Commit left half-written is still recognised as an image directory), the staged blobs,
// instance manifests and then manifest.json, the file that makes the image visible; then
// files of the previous image the new one does not use are removed.
func (d *destination) Commit(ctx context.Context, opts types.CommitOptions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	top, ok := d.manifests[manifestFile]
	if !ok {
		return errors.Errorf("committing %s: no manifest was written", types.ImageName(d.ref))
	}
	if err := d.writeFile(versionFile, []byte(version)); err != nil {
		return err
	}
	if err := d.syncBlobs(); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	if err := d.publishBlobs(); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	for name, body := range d.manifests {
		if name != manifestFile {
			if err := d.writeFile(name, body); err != nil {
				return err
			}
		}
	}
	if err := d.writeFile(manifestFile, top); err != nil {
		return err
	}
	if err := d.syncer.SyncDir(d.ref.path); err != nil { // the blobs' and manifests' names
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	d.committed = true
	if err := d.stagingDir.Remove(); err != nil { // only unused blobs of an interrupted copy left; Close would remove it too
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

// syncBlobs returns once every staged blob is durable: those staged here (the syncer) and
// those taken over from an interrupted run.
func (d *destination) syncBlobs() error {
	var files []string
	for name := range d.staged {
		files = append(files, filepath.Join(d.staging, name))
	}
	return d.syncer.Sync(files, nil)
}

// publishBlobs moves the staged blobs to their final names; the caller holds d.mu.
func (d *destination) publishBlobs() error {
	stagingName := filepath.Base(d.staging)
	for name := range d.staged {
		if err := d.root.Rename(filepath.Join(stagingName, name), name); err != nil {
			return errors.Wrapf(err, "publishing blob %s", name)
		}
		if d.previous[name] {
			d.used[name] = true
		} else {
			d.created[name] = true
		}
	}
	return nil
}

// writeFile atomically writes one metadata file; the caller holds d.mu.
func (d *destination) writeFile(name string, body []byte) error {
	if err := d.syncer.WriteFile(d.ref.file(name), body, 0o644); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	if d.previous[name] {
		d.used[name] = true
	} else {
		d.created[name] = true
	}
	return nil
}

// Close implements types.ImageDestination. It removes the staging directory and, without a
// successful Commit, every file it created, and the directory itself when it created that too.
// Without a commit, the large blobs verified in the staging directory move to the resume
// directory first, when resuming is on, so that the next run does not fetch them again.
func (d *destination) Close() error {
	d.syncer.Close()
	d.keeper.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.committed {
		d.keeper.KeepStaged(stagedDigest)
	}
	firstErr := d.stagingDir.Remove()
	if !d.committed {
		for name := range d.created {
			if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
				firstErr = errors.Wrapf(err, "removing %s after an incomplete write", d.ref.file(name))
			}
		}
	}
	if err := d.root.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if !d.committed && d.createdDir {
		os.Remove(d.ref.path) // only succeeds when empty; a leftover directory is harmless
	}
	return firstErr
}

// KeepsPartialBlob implements types.PartialBlobKeeper, as an OCI layout does: with resuming
// on, a large blob is staged in the resume directory's partial downloads (when it is on this
// directory's file system) and moved into the staging directory once complete.
func (d *destination) KeepsPartialBlob(info types.BlobInfo) (bool, io.ReadCloser, int64) {
	return d.keeper.Keeps(info)
}
