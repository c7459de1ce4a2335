package archive

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/internal/tarstore"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// session is one rewrite of an archive: the images written by its destinations go into one
// new tar (each blob once), and commit makes them visible together, keeping the images of
// the archive at PATH that they do not replace. The blobs an image wrote before its copy
// failed stay in the tar, unreferenced (a layout may hold extra blobs; the tar cannot give
// space back in the middle).
type session struct {
	path    string
	tempDir string
	store   *tarstore.Store
	old     *openedArchive // the archive at PATH when the session started, nil if none

	mu      sync.Mutex
	reused  map[digest.Digest]bool // found in old; carried over at commit
	images  []sessionImage         // committed by destinations, in order
	related []layout.Related       // referrers and tagged manifests of those images (referrers.go)
}

// sessionImage is an image a destination committed to the session.
type sessionImage struct {
	desc imgspecv1.Descriptor
	name string
}

func newSession(ctx context.Context, path string, sys *types.SystemContext) (*session, error) {
	compression, err := archiveCompression(path, sys)
	if err != nil {
		return nil, err
	}
	dst, err := tarstore.ResolveDestination(path)
	if err != nil {
		return nil, errors.Wrapf(err, "creating OCI archive %s", path)
	}
	s := &session{path: dst.Path, tempDir: tempDir(sys), reused: map[digest.Digest]bool{}}
	if !dst.Stream { // a pipe or a device holds no archive to keep images of
		if s.old, err = openExisting(ctx, dst.Path, s.tempDir); err != nil {
			return nil, err
		}
	}
	var resume *types.ResumeOptions
	if sys != nil {
		resume = sys.Resume
	}
	if s.store, err = tarstore.Create(dst.Path, tarstore.Options{TempDir: s.tempDir, Compression: compression, Resume: resume, NoFsync: sys != nil && sys.NoFsync, Stream: dst.Stream}); err != nil {
		s.abort()
		return nil, err
	}
	b, _ := json.Marshal(imgspecv1.ImageLayout{Version: imgspecv1.ImageLayoutVersion})
	if err := s.store.AddFile(layout.LayoutFile, b); err != nil {
		s.abort()
		return nil, err
	}
	return s, nil
}

// openExisting opens the archive at path when there is one; an empty file counts as none.
// Anything else that is not an OCI archive is refused rather than overwritten.
func openExisting(ctx context.Context, path, tempDir string) (*openedArchive, error) {
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		return nil, nil
	} else if fi.IsDir() {
		return nil, pathformat.DirectoryNotArchive("oci-archive", path, true)
	}
	a, err := openArchive(ctx, path, tempDir)
	if err != nil {
		return nil, errors.Wrapf(err, "refusing to replace %s, which is not a readable OCI archive", path)
	}
	if _, err := a.index(path); err != nil {
		a.Close()
		return nil, errors.Wrapf(err, "refusing to replace %s, which is not a readable OCI archive", path)
	}
	return a, nil
}

func blobMember(dg digest.Digest) string {
	p, _ := layout.BlobPath(dg) // the store validated dg
	return p
}

// reuse reports the size of blob d when the new archive has it (once another image's copy
// that is writing it now is done) or the archive being replaced has it (it is then carried
// over at commit).
func (s *session) reuse(ctx context.Context, d digest.Digest, size int64) (int64, bool, error) {
	b, ok, err := s.store.Wait(ctx, d)
	if ok || err != nil {
		return b.Size, ok, err
	}
	p, err := layout.BlobPath(d)
	if err != nil {
		return -1, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.old == nil {
		return -1, false, nil
	}
	e, err := s.old.ix.Lookup(p)
	if err != nil || (size >= 0 && e.Size != size) {
		return -1, false, nil
	}
	s.reused[d] = true
	return e.Size, true, nil
}

// add records an image committed by a destination, with the manifests related to it.
func (s *session) add(desc imgspecv1.Descriptor, name string, related []layout.Related) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images = append(s.images, sessionImage{desc: desc, name: name})
	s.related = append(s.related, related...)
}

// commit makes the images visible: see finish.
func (s *session) commit(ctx context.Context) error {
	s.closeOld()
	return s.store.Commit(ctx, func() error { return s.finish(ctx) })
}

// abort abandons the session; it is a no-op after commit.
func (s *session) abort() {
	s.closeOld()
	if s.store != nil {
		s.store.Abort()
	}
}

func (s *session) closeOld() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.old != nil {
		s.old.Close()
		s.old = nil
	}
}

// finish is the last step of commit, under the directory lock: it merges the images into the
// index of the archive now at PATH (which may have changed since the session started), copies
// in the blobs that the kept images and the new ones need from that archive, and writes
// index.json.
func (s *session) finish(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.images) == 0 {
		return errors.New("no image was written")
	}
	var cur *openedArchive
	var err error
	if !s.store.Streamed() {
		if cur, err = openExisting(ctx, s.path, s.tempDir); err != nil {
			return err
		}
	}
	idx := layout.EmptyIndex()
	var curFS fs.FS = emptyFS{}
	if cur != nil {
		defer cur.Close()
		if idx, err = cur.index(s.path); err != nil {
			return err
		}
		curFS = cur.fsys()
	}
	isNew := map[string]bool{}
	for _, img := range s.images {
		idx = layout.UpdateIndex(idx, img.desc, img.name)
		isNew[img.desc.Digest.String()+" "+img.name] = true
	}
	for _, e := range idx.Manifests {
		if isNew[e.Digest.String()+" "+layout.RefName(e)] {
			err = s.completeNew(e, cur)
		} else {
			err = s.keepOld(e, cur, curFS)
		}
		if err != nil {
			return err
		}
	}
	// After the images are complete: new referrers indexes are stored straight into the new
	// archive, and the old ones (with their manifests) were kept like any other entry.
	if idx, err = s.recordRelated(idx, cur); err != nil {
		return err
	}
	if cur != nil {
		if err := s.keepDockerManifest(cur); err != nil {
			return err
		}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return s.store.AddFile(layout.IndexFile, b)
}

// completeNew checks that a new image has everything it references, copying what it reuses
// from cur.
func (s *session) completeNew(e imgspecv1.Descriptor, cur *openedArchive) error {
	return layout.Walk(unionFS{s.store, cur}, e, s.path, func(desc imgspecv1.Descriptor) error {
		if _, ok := s.store.Blob(desc.Digest); ok {
			return nil
		}
		if cur != nil {
			if p, err := layout.BlobPath(desc.Digest); err == nil {
				if _, err := cur.ix.Lookup(p); err == nil {
					return s.carry(cur, desc.Digest)
				}
			}
		}
		if len(desc.URLs) > 0 {
			return nil // a foreign layer, stored by reference
		}
		if s.reused[desc.Digest] {
			return errors.Wrapf(types.ErrBlobNotFound, "blob %s was in %s when the copy started, but is no longer", desc.Digest, s.path)
		}
		return errors.Wrapf(types.ErrBlobNotFound, "blob %s referenced by image %s is missing", desc.Digest, e.Digest)
	})
}

// keepOld copies the blobs of an image of cur that stays in the archive. An image that cannot
// be walked (a missing manifest, say) keeps every blob of cur rather than losing data.
func (s *session) keepOld(e imgspecv1.Descriptor, cur *openedArchive, curFS fs.FS) error {
	var needed []digest.Digest
	err := layout.Walk(curFS, e, s.path, func(desc imgspecv1.Descriptor) error {
		needed = append(needed, desc.Digest)
		return nil
	})
	if err != nil {
		logrus.WithFields(logrus.Fields{"archive": s.path, "digest": e.Digest}).Warnf("keeping every blob of the archive, as an image in it cannot be read: %v", err)
		return s.carryAll(cur)
	}
	for _, d := range needed {
		p, _ := layout.BlobPath(d) // Walk validated d
		if _, err := cur.ix.Lookup(p); err != nil {
			continue // missing already; the image stays as it was
		}
		if err := s.carry(cur, d); err != nil {
			return err
		}
	}
	return nil
}

// carry copies blob d from cur into the new archive, verified, unless it is there already.
func (s *session) carry(cur *openedArchive, d digest.Digest) error {
	if _, ok := s.store.Blob(d); ok {
		return nil
	}
	p, err := layout.BlobPath(d)
	if err != nil {
		return err
	}
	sr, err := cur.ix.Open(p)
	if err != nil {
		return errors.Wrapf(err, "copying blob %s from %s", d, s.path)
	}
	vr, err := verify.NewReader(sr, d, sr.Size())
	if err != nil {
		return err
	}
	if err := s.store.AddBlob(d, sr.Size(), vr, p); err != nil {
		return errors.Wrapf(err, "copying blob %s from %s", d, s.path)
	}
	return nil
}

// carryAll copies every blob of cur that the new archive does not have yet.
func (s *session) carryAll(cur *openedArchive) error {
	for _, name := range cur.ix.Names() {
		alg, encoded, ok := strings.Cut(strings.TrimPrefix(name, "blobs/"), "/")
		dg := digest.NewDigestFromEncoded(digest.Algorithm(alg), encoded)
		if !ok || !strings.HasPrefix(name, "blobs/") || dg.Validate() != nil {
			continue // oci-layout, index.json, or files that are not blobs
		}
		if err := s.carry(cur, dg); err != nil {
			return err
		}
	}
	return nil
}

// unionFS serves blobs/<alg>/<hex> from the new archive when it has them, else from cur.
type unionFS struct {
	store *tarstore.Store
	cur   *openedArchive
}

// Open implements fs.FS.
func (u unionFS) Open(name string) (fs.File, error) {
	alg, encoded, _ := strings.Cut(strings.TrimPrefix(name, "blobs/"), "/")
	if b, ok := u.store.Blob(digest.NewDigestFromEncoded(digest.Algorithm(alg), encoded)); ok && b.Member == name {
		return &tarFile{SectionReader: u.store.Open(b), name: encoded}, nil
	}
	if u.cur == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return u.cur.fsys().Open(name)
}

// emptyFS has no files.
type emptyFS struct{}

// Open implements fs.FS.
func (emptyFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// storeWriter is the StoreWriter of an oci-archive: a session shared by the destinations of
// the references it returns.
type storeWriter struct {
	s *session
}

var _ types.StoreWriter = (*storeWriter)(nil)

// ImageReference implements types.StoreWriter.
func (w *storeWriter) ImageReference(name string) (types.ImageReference, error) {
	ref, err := imageInStore(w.s.path, name)
	if err != nil {
		return nil, err
	}
	ref.session = w.s
	return ref, nil
}

// Commit implements types.StoreWriter.
func (w *storeWriter) Commit(ctx context.Context) error {
	if err := w.s.commit(ctx); err != nil {
		return errors.Wrapf(err, "writing oci-archive:%s", w.s.path)
	}
	return nil
}

// Close implements types.StoreWriter.
func (w *storeWriter) Close() error {
	w.s.abort()
	return nil
}
