package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/tarappend"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

var _ types.ImageDestination = (*destination)(nil)

// memberTime is the modification time of every member we write, for reproducible archives.
var memberTime = time.Unix(0, 0)

// destination streams a new archive into a temporary file next to PATH; see the package
// documentation for the order of members.
type destination struct {
	ref       reference
	dir, base string
	old       *openedArchive // the archive at PATH when opened, nil if none

	mu        sync.Mutex
	tmp       *os.File
	tf        *tarappend.File
	dirs      map[string]bool // directory members written
	written   map[digest.Digest]int64
	inflight  map[digest.Digest]bool // blobs being written into a reserved region
	reused    map[digest.Digest]bool // found in old; must still be at PATH at Commit
	top       *imgspecv1.Descriptor
	topBody   []byte           // the top-level manifest, which may refer to a subject
	related   []layout.Related // manifests to name or record as referrers at Commit (referrers.go)
	committed bool
}

func newImageDestination(r reference) (*destination, error) {
	old, err := openExisting(r)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	d := &destination{ref: r, dir: filepath.Dir(r.path), base: filepath.Base(r.path), old: old,
		dirs: map[string]bool{}, written: map[digest.Digest]int64{}, inflight: map[digest.Digest]bool{}, reused: map[digest.Digest]bool{}}
	if d.tmp, err = os.CreateTemp(d.dir, "."+d.base+".tmp-*"); err != nil {
		d.closeOld()
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	d.tf = tarappend.New(d.tmp)
	b, _ := json.Marshal(imgspecv1.ImageLayout{Version: imgspecv1.ImageLayoutVersion})
	if err := d.appendMember(layout.LayoutFile, bytes.NewReader(b), int64(len(b))); err != nil {
		d.Close()
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	return d, nil
}

// openExisting opens the archive at PATH when there is one; an empty file counts as none.
// Anything else that is not an OCI archive is refused rather than overwritten.
func openExisting(r reference) (*openedArchive, error) {
	if fi, err := os.Stat(r.path); err != nil || fi.Size() == 0 {
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		return nil, nil
	}
	a, err := openArchive(r)
	if err != nil {
		return nil, errors.Wrapf(err, "refusing to replace %s, which is not a readable OCI archive", r.path)
	}
	if _, err := a.index(r.path); err != nil {
		a.Close()
		return nil, errors.Wrapf(err, "refusing to replace %s, which is not a readable OCI archive", r.path)
	}
	return a, nil
}

func (d *destination) closeOld() {
	if d.old != nil {
		d.old.Close()
		d.old = nil
	}
}

// appendMember writes one regular member, with its parent directories; the caller holds d.mu
// (or has the destination to itself). On failure the member is cut off again.
func (d *destination) appendMember(name string, r io.Reader, size int64) error {
	if err := d.appendDirs(path.Dir(name)); err != nil {
		return err
	}
	if _, err := d.tf.Append(memberHeader(name, size), io.LimitReader(r, size)); err != nil {
		return errors.Wrapf(err, "writing %s into %s", name, d.tmp.Name())
	}
	return nil
}

func memberHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: memberTime}
}

func (d *destination) appendDirs(dir string) error {
	if dir == "." || d.dirs[dir] {
		return nil
	}
	if err := d.appendDirs(path.Dir(dir)); err != nil {
		return err
	}
	if err := d.tf.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: memberTime}); err != nil {
		return errors.Wrapf(err, "writing into %s", d.tmp.Name())
	}
	d.dirs[dir] = true
	return nil
}

// appendBlob adds a verified blob unless the archive has it already; the caller holds d.mu.
func (d *destination) appendBlob(dg digest.Digest, r io.Reader, size int64) error {
	if _, ok := d.written[dg]; ok {
		return nil
	}
	p, err := layout.BlobPath(dg)
	if err != nil {
		return err
	}
	if err := d.appendMember(p, r, size); err != nil {
		return err
	}
	d.written[dg] = size
	return nil
}

// Reference implements types.ImageDestination.
func (d *destination) Reference() types.ImageReference { return d.ref }

// Properties implements types.ImageDestination. Like a layout, an archive stores any
// manifest type as it is.
func (d *destination) Properties() types.DestinationProperties {
	return types.DestinationProperties{AcceptsIndex: true, ConcurrentBlobs: true}
}

// TryReusingBlob implements types.ImageDestination: blobs already written, and blobs of the
// archive being replaced (they are carried over at Commit).
func (d *destination) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	if info.Digest == "" {
		return types.ReusedBlob{}, false, errors.New("checking for a blob with an unknown digest")
	}
	p, err := layout.BlobPath(info.Digest)
	if err != nil {
		return types.ReusedBlob{}, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	size, ok := d.written[info.Digest]
	if !ok && d.old != nil {
		if e, err := d.old.ix.Lookup(p); err == nil {
			size, ok = e.Size, true
			if info.Size < 0 || info.Size == size {
				d.reused[info.Digest] = true
			}
		}
	}
	if !ok || (info.Size >= 0 && info.Size != size) {
		return types.ReusedBlob{}, false, nil
	}
	return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: size, MediaType: info.MediaType}}, true, nil
}

// PutBlob implements types.ImageDestination. A blob of known digest and size streams straight
// into a region of the tar reserved for it, concurrently with other blobs (see tarappend); a
// blob that fails is cut off or left as a discarded member, never under its name. Others (and
// a blob another call is writing right now) are verified into a temporary file first and
// then appended.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	if info.Digest != "" && info.Size >= 0 {
		if res, done, err := d.putDirect(ctx, r, info, opts); done || err != nil {
			return res, err
		}
	}
	return d.putSpooled(ctx, r, info, opts)
}

// putDirect writes a blob of known digest and size into a reserved region. done is false
// when the blob is being written by another call; the caller then spools it.
func (d *destination) putDirect(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, bool, error) {
	fail := func(err error) (types.BlobInfo, bool, error) {
		return types.BlobInfo{}, true, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	p, err := layout.BlobPath(info.Digest)
	if err != nil {
		return fail(err)
	}
	vr, err := verify.NewPutReader(ctxio.Reader(ctx, r), info.Digest, info.Size, opts.Verified)
	if err != nil {
		return fail(err)
	}
	d.mu.Lock()
	if size, ok := d.written[info.Digest]; ok {
		d.mu.Unlock()
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return fail(err)
		}
		return types.BlobInfo{Digest: info.Digest, Size: size, MediaType: info.MediaType}, true, nil
	}
	if d.inflight[info.Digest] {
		d.mu.Unlock()
		return types.BlobInfo{}, false, nil
	}
	err = d.appendDirs(path.Dir(p))
	var reg *tarappend.Region
	if err == nil {
		reg, err = d.tf.Reserve(memberHeader(p, info.Size))
	}
	if err == nil {
		d.inflight[info.Digest] = true
	}
	d.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	fillErr := reg.Fill(vr)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, info.Digest)
	if err := d.tf.Done(reg, fillErr); err != nil {
		return fail(err)
	}
	d.written[info.Digest] = info.Size
	logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": info.Size}).Debug("blob written to archive")
	return types.BlobInfo{Digest: info.Digest, Size: info.Size, MediaType: info.MediaType}, true, nil
}

// putSpooled verifies the stream into a temporary file first, so only complete, matching
// blobs are appended to the archive.
func (d *destination) putSpooled(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	f, err := os.CreateTemp(d.dir, "."+d.base+".blob-*")
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	defer os.Remove(f.Name())
	defer f.Close()
	vr, err := verify.NewPutReader(ctxio.Reader(ctx, r), info.Digest, info.Size, opts.Verified)
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	n, err := io.Copy(f, vr)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	dg := vr.Digest()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.appendBlob(dg, f, n); err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", dg, types.ImageName(d.ref))
	}
	logrus.WithFields(logrus.Fields{"digest": dg, "size": n}).Debug("blob written to archive")
	return types.BlobInfo{Digest: dg, Size: n, MediaType: info.MediaType}, nil
}

// PutManifest implements types.ImageDestination.
func (d *destination) PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error {
	dg := digest.FromBytes(body)
	if instance != nil {
		if err := instance.Validate(); err != nil {
			return errors.Wrapf(err, "writing manifest to %s: invalid instance digest %q", types.ImageName(d.ref), *instance)
		}
		if dg = instance.Algorithm().FromBytes(body); dg != *instance {
			return errors.Errorf("writing manifest %s to %s: the manifest's digest is %s", *instance, types.ImageName(d.ref), dg)
		}
	}
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(body)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.appendBlob(dg, bytes.NewReader(body), int64(len(body))); err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", dg, types.ImageName(d.ref))
	}
	if instance == nil {
		d.top = &imgspecv1.Descriptor{MediaType: mimeType, Digest: dg, Size: int64(len(body))}
		d.topBody = body
	}
	return nil
}

// Commit implements types.ImageDestination: under the directory lock it carries over the
// blobs of the archive now at PATH, appends index.json and renames the new archive over PATH.
func (d *destination) Commit(ctx context.Context, opts types.CommitOptions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.top == nil {
		return errors.Errorf("committing %s: no manifest was written", types.ImageName(d.ref))
	}
	unlock, err := lockDir(ctx, d.dir)
	if err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	defer unlock()
	if err := d.finish(); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	d.committed = true
	return nil
}

// finish merges the current archive, writes index.json and renames; the caller holds the lock.
func (d *destination) finish() error {
	cur, err := openExisting(d.ref) // it may have changed since we opened it
	if err != nil {
		return err
	}
	idx := layout.EmptyIndex()
	if cur != nil {
		defer cur.Close()
		if idx, err = cur.index(d.ref.path); err != nil {
			return err
		}
		if err := d.carryOver(cur); err != nil {
			return err
		}
	}
	for dg := range d.reused {
		if _, ok := d.written[dg]; !ok {
			return errors.Wrapf(types.ErrBlobNotFound, "blob %s was in %s when the copy started, but is no longer", dg, d.ref.path)
		}
	}
	if idx, err = d.recordRelated(layout.UpdateIndex(idx, *d.top, d.ref.name), cur); err != nil {
		return err
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := d.appendMember(layout.IndexFile, bytes.NewReader(b), int64(len(b))); err != nil {
		return err
	}
	if err := d.tf.Close(); err != nil {
		return err
	}
	if err := d.tmp.Sync(); err != nil {
		return err
	}
	if err := d.tmp.Chmod(0o644); err != nil {
		return err
	}
	return os.Rename(d.tmp.Name(), d.ref.path)
}

// carryOver appends every blob of cur that the new archive does not have yet.
func (d *destination) carryOver(cur *openedArchive) error {
	for _, name := range cur.ix.Names() {
		alg, encoded, ok := strings.Cut(strings.TrimPrefix(name, "blobs/"), "/")
		dg := digest.NewDigestFromEncoded(digest.Algorithm(alg), encoded)
		if !ok || !strings.HasPrefix(name, "blobs/") || dg.Validate() != nil {
			continue // oci-layout, index.json, or files that are not blobs
		}
		if _, ok := d.written[dg]; ok {
			continue
		}
		sr, err := cur.ix.Open(name)
		if err != nil {
			return errors.Wrapf(err, "copying %s from %s", name, d.ref.path)
		}
		if err := d.appendBlob(dg, sr, sr.Size()); err != nil {
			return err
		}
	}
	return nil
}

// Close implements types.ImageDestination. Without a successful Commit, the temporary
// archive is removed and PATH is left as it was.
func (d *destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closeOld()
	err := d.tmp.Close()
	if d.committed {
		return nil // the tar writer was closed and the file renamed; the Close error is moot
	}
	if rerr := os.Remove(d.tmp.Name()); rerr != nil && !os.IsNotExist(rerr) {
		return errors.Wrapf(rerr, "removing temporary archive %s", d.tmp.Name())
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}
