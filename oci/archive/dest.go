package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/tarstore"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

var _ types.ImageDestination = (*destination)(nil)

// destination writes a new archive into a tarstore.Store; see the package documentation for
// the order of members.
type destination struct {
	ref   reference
	old   *openedArchive // the archive at PATH when opened, nil if none
	store *tarstore.Store

	mu     sync.Mutex
	reused map[digest.Digest]bool // found in old; must still be at PATH at Commit
	top    *imgspecv1.Descriptor
}

func newImageDestination(r reference) (*destination, error) {
	old, err := openExisting(r)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	d := &destination{ref: r, old: old, reused: map[digest.Digest]bool{}}
	if d.store, err = tarstore.Create(r.path, tarstore.Options{}); err != nil {
		d.closeOld()
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	b, _ := json.Marshal(imgspecv1.ImageLayout{Version: imgspecv1.ImageLayoutVersion})
	if err := d.store.AddFile(layout.LayoutFile, b); err != nil {
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

// addBlob adds a blob whose content the caller vouches for, unless the archive has it.
func (d *destination) addBlob(dg digest.Digest, r io.Reader, size int64) error {
	p, err := layout.BlobPath(dg)
	if err != nil {
		return err
	}
	return d.store.AddBlob(dg, size, r, p)
}

func blobMember(dg digest.Digest) string {
	p, _ := layout.BlobPath(dg) // the store validated dg
	return p
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
	b, ok := d.store.Blob(info.Digest)
	size := b.Size
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

// PutBlob implements types.ImageDestination (see tarstore.Store.Put): a blob of known digest
// and size streams straight into the archive, concurrently with other blobs.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	dg, size, err := d.store.Put(ctx, r, info.Digest, info.Size, opts.Verified, blobMember)
	if err != nil {
		return types.BlobInfo{}, errors.Wrapf(err, "storing blob %s in %s", info.Digest, types.ImageName(d.ref))
	}
	return types.BlobInfo{Digest: dg, Size: size, MediaType: info.MediaType}, nil
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
	if err := d.addBlob(dg, bytes.NewReader(body), int64(len(body))); err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", dg, types.ImageName(d.ref))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if instance == nil {
		d.top = &imgspecv1.Descriptor{MediaType: mimeType, Digest: dg, Size: int64(len(body))}
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
	d.closeOld()
	if err := d.store.Commit(ctx, d.finish); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	return nil
}

// finish merges the current archive and writes index.json; Store.Commit calls it.
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
		if _, ok := d.store.Blob(dg); !ok {
			return errors.Wrapf(types.ErrBlobNotFound, "blob %s was in %s when the copy started, but is no longer", dg, d.ref.path)
		}
	}
	b, err := json.Marshal(layout.UpdateIndex(idx, *d.top, d.ref.name))
	if err != nil {
		return err
	}
	return d.store.AddFile(layout.IndexFile, b)
}

// carryOver appends every blob of cur that the new archive does not have yet.
func (d *destination) carryOver(cur *openedArchive) error {
	for _, name := range cur.ix.Names() {
		alg, encoded, ok := strings.Cut(strings.TrimPrefix(name, "blobs/"), "/")
		dg := digest.NewDigestFromEncoded(digest.Algorithm(alg), encoded)
		if !ok || !strings.HasPrefix(name, "blobs/") || dg.Validate() != nil {
			continue // oci-layout, index.json, or files that are not blobs
		}
		if _, ok := d.store.Blob(dg); ok {
			continue
		}
		sr, err := cur.ix.Open(name)
		if err != nil {
			return errors.Wrapf(err, "copying %s from %s", name, d.ref.path)
		}
		if err := d.addBlob(dg, sr, sr.Size()); err != nil {
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
	d.store.Abort()
	return nil
}
