package layout

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

var (
	_ types.ImageDestination = (*destination)(nil)
	_ types.ManifestChecker  = (*destination)(nil)
)

// destination adds or replaces one image in a layout. Blobs and manifests are verified into
// a staging directory inside the layout (same file system, so publishing is a rename); Commit
// takes the layout lock, moves them under blobs/, checks that everything the image references
// is present and replaces index.json. Close removes the staging directory, so an aborted
// write leaves no file behind (its large verified blobs move to the resume directory).
type destination struct {
	ref        reference
	root       *os.Root
	stagingDir *staging.Dir
	staging    string // stagingDir.Path
	createdDir bool
	syncer     *atomicfile.Syncer // fsyncs and names staged files in the background
	keeper     *resume.Keeper     // stages large blobs as partial downloads; nil when resuming is off

	mu        sync.Mutex
	staged    map[digest.Digest]int64
	kept      map[digest.Digest]int64 // staged by interrupted writers; staged once reused
	top       *imgspecv1.Descriptor
	topBody   []byte    // the top-level manifest, which may refer to a subject
	related   []Related // manifests to name or record as referrers at Commit (referrers.go)
	committed bool
	scope     types.BICTransportScope // where the blob-info cache records this layout's blobs
}

func newImageDestination(r reference, resumeOpts *types.ResumeOptions, durable bool) (*destination, error) {
	createdDir := false
	if _, err := os.Stat(r.path); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(r.path, 0o755); err != nil {
			return nil, errors.Wrapf(err, "creating layout directory for %s", types.ImageName(r))
		}
		createdDir = true
	}
	root, err := os.OpenRoot(r.path)
	if err != nil {
		return nil, errors.Wrapf(pathformat.NotDirectory("oci", r.path, true, err), "opening %s", types.ImageName(r))
	}
	if err := checkWritableLayout(root, r.path); err != nil {
		root.Close()
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	// A killed writer's temporary files (a temporary index.json) are removed here, its
	// staging directory by takeAbandoned; a live writer's are locked and stay.
	staging.RemoveDead(r.path, nil)
	sd, err := staging.NewDir(r.path)
	if err != nil {
		root.Close()
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	d := &destination{ref: r, root: root, stagingDir: sd, staging: sd.Path, createdDir: createdDir, syncer: atomicfile.NewSyncer(durable), staged: map[digest.Digest]int64{}, kept: map[digest.Digest]int64{}}
	if abs, err := filepath.Abs(r.path); err == nil {
		d.scope = types.BICTransportScope{Opaque: abs}
	}
	d.takeAbandoned(resumeOpts != nil)
	d.keeper = resume.NewKeeper(resumeOpts, sd.Path)
	return d, nil
}

// takeAbandoned removes the staging directories that interrupted writers (dead processes)
// left in the layout; with resume, the blobs and manifests they had verified and staged move
// into this destination's staging first, so that TryReusingBlob finds them (issue 17). Only
// complete, verified files get their staged name (atomicfile), so nothing else is taken.
func (d *destination) takeAbandoned(resume bool) {
	var take func(name string) bool
	if resume {
		take = func(name string) bool { _, ok := parseStagedName(name); return ok }
	}
	for name, size := range staging.TakeAbandoned(d.ref.path, d.staging, take) {
		dg, _ := parseStagedName(name)
		d.kept[dg] = size
	}
}

// parseStagedName is the inverse of stagedName.
func parseStagedName(name string) (digest.Digest, bool) {
	alg, enc, ok := strings.Cut(name, "-")
	dg := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	return dg, ok && dg.Validate() == nil
}

// checkWritableLayout accepts an existing layout with a readable index.json, or a directory
// holding nothing but what concurrent writers of a new layout create: staging directories,
// the lock file and temporary files (internal/staging).
func checkWritableLayout(root *os.Root, where string) error {
	fsys := root.FS()
	if _, err := fs.Stat(fsys, LayoutFile); err == nil {
		if err := checkLayoutVersion(fsys, where); err != nil {
			return err
		}
		if _, err := fs.Stat(fsys, IndexFile); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		_, err := readIndexShared(fsys, where)
		return err
	}
	empty, err := noLayoutYet(fsys, where)
	switch {
	case err != nil:
		return err
	case !empty:
		// A concurrent writer may have committed the first image between the Stat above
		// and noLayoutYet: it writes oci-layout before anything else.
		if _, err := fs.Stat(fsys, LayoutFile); err == nil {
			return checkWritableLayout(root, where)
		}
		return errors.Wrapf(ErrInvalidLayout, "%s is not empty and has no %s file; refusing to write an OCI layout into it", where, LayoutFile)
	}
	return nil
}

// noLayoutYet reports whether a directory without an oci-layout file holds nothing but what
// writers of a new layout create (staging directories, the lock file, temporary files): an
// empty directory, one a copy into it left after it was interrupted, or one a writer is
// creating a layout in now.
func noLayoutYet(fsys fs.FS, where string) (bool, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return false, errors.Wrapf(err, "reading %s", where)
	}
	for _, e := range entries {
		if e.Name() != LockFile && !staging.IsTemporary(e.Name()) {
			return false, nil
		}
	}
	return true, nil
}

// Reference implements types.ImageDestination.
func (d *destination) Reference() types.ImageReference { return d.ref }

// Properties implements types.ImageDestination. A layout stores any manifest type as it is,
// but a schema1 manifest there is of no use to its readers (see UnusableManifestMIMETypes).
// Foreign layers may stay references: a layout need not hold blobs whose descriptors have URLs.
func (d *destination) Properties() types.DestinationProperties {
	return types.DestinationProperties{
		AcceptsIndex: true, ConcurrentBlobs: true, AcceptsForeignLayerURLs: true,
		UnusableManifestMIMETypes: UnusableManifestMIMETypes(),
	}
}

// UnusableManifestMIMETypes lists the manifest types a layout (or an OCI archive) would store
// but its readers cannot use: Docker schema1 has no image config, so umoci, containerd and
// skopeo see no image in a layout entry pointing at one. Copies convert them.
func UnusableManifestMIMETypes() []string {
	return []string{manifest.DockerV2Schema1SignedMediaType, manifest.DockerV2Schema1MediaType}
}

func stagedName(dg digest.Digest) string {
	return dg.Algorithm().String() + "-" + dg.Encoded()
}

// TryReusingBlob implements types.ImageDestination; it answers from the blobs in the layout
// and those staged by this destination: the blob itself when its compression is acceptable,
// else (with substitution allowed) a variant of it in the required compression that the
// blob-info cache knows this layout holds.
func (d *destination) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	if info.Digest == "" {
		return types.ReusedBlob{}, false, errors.New("checking for a blob with an unknown digest")
	}
	if opts.AcceptsOriginal() {
		size, found, isKept, err := d.holds(info.Digest, info.Size, true)
		if err != nil {
			return types.ReusedBlob{}, false, err
		}
		if found {
			d.recordLocation(opts.Cache, info.Digest)
			logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": size}).Debug("blob reused")
			return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: size, MediaType: info.MediaType}, Kept: isKept}, true, nil
		}
	}
	if opts.Cache == nil || !opts.CanSubstitute || d.scope.Opaque == "" {
		return types.ReusedBlob{}, false, nil
	}
	// A variant of the blob (the same content, compressed otherwise) that the cache saw
	// stored in this layout, e.g. by an earlier copy with --dest-compress-format.
	for _, c := range opts.Cache.CandidateLocations(Transport.Name(), d.scope, info.Digest, true) {
		if c.Digest == info.Digest || !opts.AcceptsCompression(c.CompressorName) || c.Digest.Validate() != nil {
			continue
		}
		size, found, _, err := d.holds(c.Digest, -1, false)
		if err != nil || !found {
			continue
		}
		logrus.WithFields(logrus.Fields{"digest": info.Digest, "substitute": c.Digest, "size": size}).Debug("blob reused as a variant the layout holds")
		return types.ReusedBlob{Info: types.BlobInfo{Digest: c.Digest, Size: size}}, true, nil
	}
	return types.ReusedBlob{}, false, nil
}

// holds reports whether the layout has blob dg, of size bytes when size >= 0: staged by this
// destination, staged by an interrupted writer (taken over when takeKept; isKept then), or
// stored. A file of another size is a damaged copy (PutBlob replaces it).
func (d *destination) holds(dg digest.Digest, size int64, takeKept bool) (_ int64, found, isKept bool, _ error) {
	p, err := BlobPath(dg)
	if err != nil {
		return 0, false, false, err
	}
	d.mu.Lock()
	got, ok := d.staged[dg]
	kept, inKept := d.kept[dg]
	isKept = takeKept && !ok && inKept && (size < 0 || kept == size)
	if isKept {
		got, ok = kept, true
		d.staged[dg] = kept
		delete(d.kept, dg)
		logrus.WithFields(logrus.Fields{"digest": dg, "size": got}).Debug("reusing a blob an interrupted copy staged")
	}
	d.mu.Unlock()
	if !ok {
		fi, err := d.root.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, false, nil
		}
		if err != nil {
			return 0, false, false, errors.Wrapf(err, "checking for blob %s in %s", dg, types.ImageName(d.ref))
		}
		if !fi.Mode().IsRegular() {
			return 0, false, false, nil
		}
		got = fi.Size()
	}
	if size >= 0 && got != size {
		return 0, false, false, nil
	}
	return got, true, isKept, nil
}

// recordLocation tells the cache that this layout holds blob dg, so that a later copy asking
// for another compression of it finds it (TryReusingBlob).
func (d *destination) recordLocation(cache types.BlobInfoCache, dg digest.Digest) {
	if cache != nil && d.scope.Opaque != "" {
		cache.RecordKnownLocation(Transport.Name(), d.scope, dg, types.BICLocationReference{})
	}
}

// PutBlob implements types.ImageDestination. The blob is verified into the staging directory
// and published by Commit.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	name := func(dg digest.Digest) string { return filepath.Join(d.staging, stagedName(dg)) }
	dg, size, kept, err := d.keeper.Stage(d.syncer, ctxio.Reader(ctx, r), info, opts, 0o644, name)
	if !kept {
		dg, size, err = d.syncer.StageBlob(d.staging, ctxio.Reader(ctx, r), info.Digest, info.Size, opts.Verified, 0o644, name)
	}
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	d.mu.Lock()
	d.staged[dg] = size
	d.mu.Unlock()
	d.recordLocation(opts.Cache, dg)
	logrus.WithFields(logrus.Fields{"digest": dg, "size": size}).Debug("blob staged")
	return types.BlobInfo{Digest: dg, Size: size, MediaType: info.MediaType}, nil
}

// PutManifest implements types.ImageDestination. Manifests are stored as blobs, byte for
// byte; the top-level one becomes the image's index.json entry at Commit. A manifest the
// layout holds already (another tag of the image) is not written again, as TryReusingBlob
// reuses blobs: Commit checks that it is still there. (A sync of 3,000 tags of one image
// wrote, fsynced and dropped the manifest 3,000 times.)
func (d *destination) PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error {
	dg, err := manifest.DigestFor(body, instance)
	if err != nil {
		return errors.Wrapf(err, "writing manifest to %s", types.ImageName(d.ref))
	}
	_, present, _, err := d.holds(dg, int64(len(body)), false)
	if err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", dg, types.ImageName(d.ref))
	}
	if !present {
		if err := d.syncer.StageFile(filepath.Join(d.staging, stagedName(dg)), body, 0o644); err != nil {
			return errors.Wrapf(err, "writing manifest %s to %s", dg, types.ImageName(d.ref))
		}
	}
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(body)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !present {
		d.staged[dg] = int64(len(body))
	}
	if instance == nil {
		d.top = &imgspecv1.Descriptor{MediaType: mimeType, Digest: dg, Size: int64(len(body))}
		d.topBody = body
		if isDockerType(mimeType) && firstDockerWarning(d.ref.path) {
			logrus.WithField("mediaType", mimeType).Warnf("storing a Docker-typed manifest in the OCI layout %s; some OCI-only tools (umoci, older skopeo) cannot use it, --format oci writes an OCI one if they must", d.ref.path)
		}
	}
	return nil
}

// warnedDocker holds the layouts (paths) given the warning about Docker-typed manifests:
// once per layout and process, not once per image, so that a sync of hundreds of images
// into a layout (from cron, whose output is mailed) warns once.
var warnedDocker sync.Map

func firstDockerWarning(path string) bool {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	_, warned := warnedDocker.LoadOrStore(path, true)
	return !warned
}

func isDockerType(mimeType string) bool {
	return strings.HasPrefix(mimeType, "application/vnd.docker.")
}

// Commit implements types.ImageDestination. The images that this process commits into one
// layout at the same time are written into index.json together (commitTogether).
func (d *destination) Commit(ctx context.Context, opts types.CommitOptions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.top == nil {
		return errors.Errorf("committing %s: no manifest was written", types.ImageName(d.ref))
	}
	if err := commitTogether(ctx, d); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	d.committed = true
	return nil
}

// writeLayoutFile writes oci-layout when missing; the caller holds the layout lock.
func (d *destination) writeLayoutFile(s *atomicfile.Syncer) error {
	if _, err := d.root.Stat(LayoutFile); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	b, _ := json.Marshal(imgspecv1.ImageLayout{Version: imgspecv1.ImageLayoutVersion})
	return s.WriteFile(filepath.Join(d.ref.path, LayoutFile), b, 0o644)
}

// publishBlobs moves the staged blobs under blobs/, once each is durable; the caller holds
// the layout lock. It returns the blobs/ALG directories that got new names, and whether it
// created blobs/ itself, for syncBlobDirs.
func (d *destination) publishBlobs() (dirs map[string]bool, newBlobsDir bool, _ error) {
	var publish []digest.Digest
	var files []string
	for dg, size := range d.staged {
		p, _ := BlobPath(dg) // staged digests are valid
		if fi, err := d.root.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
			continue // already present (another writer, or an earlier copy)
		}
		publish = append(publish, dg)
		files = append(files, filepath.Join(d.staging, stagedName(dg)))
	}
	// The syncer made each staged file durable before giving it its staged name; files taken
	// over from an interrupted run are synced here. All before anything under blobs/ (and so
	// index.json) can refer to them.
	if err := d.syncer.Sync(files, nil); err != nil {
		return nil, false, err
	}
	if len(publish) == 0 {
		return nil, false, nil
	}
	_, err := d.root.Stat(blobsDir)
	newBlobsDir = errors.Is(err, fs.ErrNotExist)
	stagingName := filepath.Base(d.staging)
	dirs = map[string]bool{}
	for _, dg := range publish {
		p, _ := BlobPath(dg)
		if !dirs[path.Dir(p)] {
			if err := d.root.MkdirAll(path.Dir(p), 0o755); err != nil {
				return nil, false, errors.Wrapf(err, "creating %s", path.Dir(p))
			}
			dirs[path.Dir(p)] = true
		}
		if err := d.root.Rename(path.Join(stagingName, stagedName(dg)), p); err != nil {
			return nil, false, errors.Wrapf(err, "publishing blob %s", dg)
		}
	}
	return dirs, newBlobsDir, nil
}

// syncBlobDirs makes the new names in the blobs/ALG directories of the layout at root
// durable, once per directory, then blobs/ (whose ALG directories may be new) and, when
// blobs/ itself is new, the layout's root, before index.json can refer to any of them.
func syncBlobDirs(s *atomicfile.Syncer, root string, dirs map[string]bool, newBlobsDir bool) error {
	var list []string
	for dir := range dirs {
		list = append(list, filepath.Join(root, filepath.FromSlash(dir)))
	}
	list = append(list, filepath.Join(root, blobsDir))
	if newBlobsDir {
		list = append(list, root)
	}
	return s.Sync(nil, list)
}

// checkComplete verifies that every blob the image top references is in the layout, which
// also catches a blob removed by a concurrent DeleteImage after TryReusingBlob found it.
func (d *destination) checkComplete(top imgspecv1.Descriptor) error {
	return walk(d.root.FS(), top, d.ref.path, nil, func(desc imgspecv1.Descriptor) error {
		p, err := BlobPath(desc.Digest)
		if err != nil {
			return err
		}
		if _, err := d.root.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) && len(desc.URLs) == 0 {
				return errors.Wrapf(types.ErrBlobNotFound, "blob %s referenced by the image is missing from the layout", desc.Digest)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return errors.Wrapf(err, "checking %s", p)
			}
		}
		return nil
	})
}

// HasManifest implements types.ManifestChecker: true when index.json lists dg (under any
// name) and every blob it references, through its instances, is in the layout. Blobs are only
// looked up, not hashed, as TryReusingBlob does; Commit checks completeness again under the
// layout lock.
func (d *destination) HasManifest(ctx context.Context, dg digest.Digest) (bool, error) {
	if _, err := d.root.Stat(IndexFile); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	idx, err := readIndexShared(d.root.FS(), d.ref.path)
	if err != nil {
		return false, errors.Wrapf(err, "checking manifest %s in %s", dg, types.ImageName(d.ref))
	}
	for _, e := range idx.Manifests {
		if e.Digest != dg {
			continue
		}
		err := d.checkComplete(e)
		if errors.Is(err, types.ErrBlobNotFound) || errors.Is(err, types.ErrManifestNotFound) {
			logrus.WithFields(logrus.Fields{"digest": dg}).Debugf("manifest listed but incomplete: %v", err)
			return false, nil
		}
		if err != nil {
			return false, errors.Wrapf(err, "checking manifest %s in %s", dg, types.ImageName(d.ref))
		}
		return true, nil
	}
	return false, nil
}

// UpdateIndex returns a copy of idx with desc added as the image called name: it takes the
// place of the first entry with that exact ref.name (other entries with it are dropped), or
// is appended. With name "", desc likewise replaces the unnamed entries: oci:PATH names the
// layout's default image. Other entries are kept unchanged.
func UpdateIndex(idx *imgspecv1.Index, desc imgspecv1.Descriptor, name string) *imgspecv1.Index {
	res := *idx
	res.Manifests = make([]imgspecv1.Descriptor, 0, len(idx.Manifests)+1)
	desc.Annotations = nil
	if name != "" {
		desc.Annotations = map[string]string{imgspecv1.AnnotationRefName: name}
	}
	placed := false
	for _, e := range idx.Manifests {
		if RefName(e) == name {
			if !placed {
				res.Manifests = append(res.Manifests, desc)
				placed = true
			}
			continue
		}
		res.Manifests = append(res.Manifests, e)
	}
	if !placed {
		res.Manifests = append(res.Manifests, desc)
	}
	return &res
}

// Close implements types.ImageDestination. It removes the staging directory, and the layout
// directory when this destination created it and nothing was committed. Without a commit (the
// copy was interrupted or failed), the large blobs verified in the staging directory move to
// the resume directory first, when resuming is on, so that the next run does not fetch them
// again.
func (d *destination) Close() error {
	d.syncer.Close()
	d.keeper.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.committed {
		d.keeper.KeepStaged(parseStagedName)
	}
	err := d.stagingDir.Remove()
	if cerr := d.root.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if !d.committed && d.createdDir {
		os.Remove(d.ref.path) // only succeeds when empty; another writer may be using it
	}
	return err
}

// KeepsPartialBlob implements types.PartialBlobKeeper: with resuming on, a large blob is
// staged in the resume directory's partial downloads (when it is on the layout's file system)
// and moved into the layout's staging once complete, so that a blob pulled from a registry is
// written once, and what an interrupted copy received stays for the next run.
func (d *destination) KeepsPartialBlob(info types.BlobInfo) (bool, io.ReadCloser, int64) {
	return d.keeper.Keeps(info)
}
