package tarfile

import (
	"context"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// keepOthers adds the images of cur, the archive being replaced, that the new images do not
// replace: an old image keeps the RepoTags no new image took and goes when none is left (an
// untagged old image goes when an untagged image is added, as writing an unnamed image to
// docker-archive:PATH replaces the unnamed one). Kept images come first in manifest.json and
// index.json, in their old order, so that their @N positions stay the same.
func (w *Writer) keepOthers(ctx context.Context, cur *Reader) error {
	w.mu.Lock()
	taken, untagged := map[string]bool{}, false
	for _, it := range w.items {
		untagged = untagged || len(it.RepoTags) == 0
		for _, t := range it.RepoTags {
			taken[t] = true
		}
	}
	newItems, newEntries := len(w.items), len(w.ociEntries)
	w.mu.Unlock()
	for i, it := range cur.items {
		var keep []reference.NamedTagged
		for _, t := range it.RepoTags {
			if nt, err := parseRepoTag(t); err == nil && !taken[NameTag(nt)] {
				keep = append(keep, nt)
			}
		}
		if (len(it.RepoTags) == 0 && untagged) || (len(it.RepoTags) > 0 && len(keep) == 0) {
			logrus.WithFields(logrus.Fields{"archive": cur.path, "image": i}).Debug("image replaced")
			continue
		}
		if err := w.keepImage(ctx, cur, i, keep); err != nil {
			return errors.Wrapf(err, "keeping image %s", cur.imageName(i))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := len(w.items) - newItems
	w.items = append(w.items[newItems:], w.items[:newItems]...)
	w.ociEntries = append(w.ociEntries[newEntries:], w.ociEntries[:newEntries]...)
	for d, i := range w.itemByConfig {
		w.itemByConfig[d] = (i + kept) % len(w.items)
	}
	return nil
}

// keepImage copies image pos of cur (its whole index, when the archive has one for it) into
// the new archive, tagged names.
func (w *Writer) keepImage(ctx context.Context, cur *Reader, pos int, names []reference.NamedTagged) error {
	src, err := NewSource(cur, false, nil, pos)
	if err != nil {
		return err
	}
	s := src.(*source)
	top, topType, err := s.GetManifest(ctx, nil)
	if err != nil {
		return err
	}
	chosen := top
	if manifest.IsIndexType(topType) {
		if chosen, err = w.keepInstances(ctx, s, top, topType); err != nil {
			return err
		}
	} else if err := w.keepBlobs(ctx, s, top, topType, true); err != nil {
		return err
	}
	return w.AddImage(Image{Manifest: chosen, Top: top, TopType: topType, Names: names})
}

// keepInstances copies the instances of the index s serves (their manifests and blobs) and
// returns the one manifest.json lists. Blobs missing from the old archive for other instances
// stay missing (Docker 25 saves only one platform's layers); the listed one must be complete.
func (w *Writer) keepInstances(ctx context.Context, s *source, top []byte, topType string) ([]byte, error) {
	idx, err := manifest.IndexFromBlob(top, topType)
	if err != nil {
		return nil, err
	}
	chosen, err := w.keepIndexInstances(ctx, s, idx, 0)
	if err != nil {
		return nil, err
	}
	if chosen == nil {
		return nil, errors.Errorf("no instance of the index has config %s", s.configDigest)
	}
	return chosen, nil
}

// keepIndexInstances is keepInstances for the instances of idx, depth levels of nested
// indexes down; it returns the manifest with the listed config, nil when idx has none.
func (w *Writer) keepIndexInstances(ctx context.Context, s *source, idx manifest.Index, depth int) ([]byte, error) {
	var chosen []byte
	for _, inst := range idx.Instances() {
		d := inst.Digest
		b, mt, err := s.GetManifest(ctx, &d)
		if err != nil {
			return nil, err
		}
		if manifest.IsIndexType(mt) {
			nested, err := manifest.IndexFromBlob(b, mt)
			if err != nil || depth >= manifest.MaxIndexDepth {
				return nil, errors.Wrapf(manifest.ErrInvalidManifest, "nested index %s: too deep or malformed (%v)", d, err)
			}
			c, err := w.keepIndexInstances(ctx, s, nested, depth+1)
			if err != nil {
				return nil, err
			}
			if chosen == nil {
				chosen = c
			}
			if err := w.PutManifestBlob(b); err != nil {
				return nil, err
			}
			continue
		}
		m, err := manifest.FromBlob(b, mt)
		if err != nil {
			return nil, errors.Wrapf(err, "parsing manifest %s", d)
		}
		listed := chosen == nil && m.ConfigInfo().Digest == s.configDigest
		if err := w.keepBlobs(ctx, s, b, mt, listed); err != nil {
			return nil, err
		}
		if err := w.PutManifestBlob(b); err != nil {
			return nil, err
		}
		if listed {
			chosen = b
		}
	}
	return chosen, nil
}

// keepBlobs copies the config and layers of manifest b; with required unset, missing blobs
// are skipped.
func (w *Writer) keepBlobs(ctx context.Context, s *source, b []byte, mimeType string, required bool) error {
	m, err := manifest.FromBlob(b, mimeType)
	if err != nil {
		return errors.Wrap(err, "parsing manifest")
	}
	blobs := []types.BlobInfo{m.ConfigInfo()}
	for _, l := range m.LayerInfos() {
		blobs = append(blobs, l.BlobInfo)
	}
	for i, info := range blobs {
		err := w.keepBlob(ctx, s, info, i == 0)
		if err != nil && !required && (errors.Is(err, types.ErrBlobNotFound) || errors.Is(err, fs.ErrNotExist)) {
			logrus.WithFields(logrus.Fields{"digest": info.Digest}).Debug("blob of another platform missing from the archive being replaced")
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keepBlob copies one blob from s, verified, unless the new archive has it.
func (w *Writer) keepBlob(ctx context.Context, s *source, info types.BlobInfo, isConfig bool) error {
	if _, ok := w.store.Blob(info.Digest); ok {
		return nil
	}
	rc, size, err := s.GetBlob(ctx, info, types.GetBlobOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	vr, err := verify.NewReader(rc, info.Digest, size)
	if err != nil {
		return err
	}
	return w.store.AddBlob(info.Digest, size, vr, w.blobMember(info.Digest, isConfig))
}

// openCurrent opens the archive at path, nil when there is none (or an empty file).
func openCurrent(ctx context.Context, path, tempDir string) (*Reader, error) {
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		if err != nil && !os.IsNotExist(err) {
			return nil, errors.Wrapf(err, "opening docker archive %s", path)
		}
		return nil, nil
	} else if st.IsDir() {
		return nil, pathformat.DirectoryNotArchive("docker-archive", path, true)
	}
	r, err := NewReader(ctx, path, &types.SystemContext{BigFilesTemporaryDir: tempDir})
	if err != nil {
		return nil, errors.Wrapf(err, "refusing to replace %s, which is not a readable docker archive", path)
	}
	return r, nil
}

// ReuseFromPrevious copies blob d, verified, from the archive being replaced (when it holds
// it under a content-addressed name) and returns its size. Nothing is fetched over a network.
func (w *Writer) ReuseFromPrevious(d digest.Digest) (int64, bool) {
	if d.Validate() != nil {
		return -1, false
	}
	w.prevMu.Lock()
	defer w.prevMu.Unlock()
	prev := w.prev
	if prev == nil {
		return -1, false
	}
	for _, name := range []string{blobPath(d), d.Encoded() + ".tar", d.Encoded() + ".json"} {
		e, err := prev.index.Lookup(name)
		if err != nil {
			continue
		}
		vr, err := verify.NewReader(io.NewSectionReader(prev.file, e.Offset, e.Size), d, e.Size)
		if err == nil {
			err = w.store.AddBlob(d, e.Size, vr, w.blobMember(d, strings.HasSuffix(name, ".json")))
		}
		if err != nil {
			logrus.WithField("digest", d).Debugf("not reusing blob of the archive being replaced: %v", err)
			return -1, false
		}
		return e.Size, true
	}
	return -1, false
}

func (w *Writer) closePrevious() {
	w.prevMu.Lock()
	defer w.prevMu.Unlock()
	if w.prev != nil { // no reuse from now on
		w.prev.Close()
		w.prev = nil
	}
}
