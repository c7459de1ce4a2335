package layout

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/pathformat"
	"github.com/imgcopy/imgcopy/types"
)

// DeleteImage implements types.ImageDeleter: it removes the image's entries from index.json
// and then deletes every blob no remaining image references. A writer that found such a blob
// with TryReusingBlob and commits afterwards fails with ErrBlobNotFound instead of writing an
// incomplete image.
func (r reference) DeleteImage(ctx context.Context, sys *types.SystemContext) error {
	if r.name == "" && r.digest == "" {
		return types.UsageError{Err: errors.Errorf("deleting %s: name the image to delete (PATH:NAME or PATH@DIGEST)", types.ImageName(r))}
	}
	root, err := openLayout(r)
	if err != nil {
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	defer root.Close()
	unlock, err := lockLayout(ctx, root, r.path)
	if err != nil {
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	defer unlock()
	idx, err := readIndexFile(root.FS(), r.path)
	if err != nil {
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	desc, err := selectImage(idx, r.name, r.digest, r.path)
	if err != nil {
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	kept := *idx
	kept.Manifests = nil
	for _, e := range idx.Manifests {
		exact, suffix := nameMatches(e, r.name)
		if e.Digest == desc.Digest && (r.name == "" || exact || suffix) {
			continue
		}
		kept.Manifests = append(kept.Manifests, e)
	}
	if kept.Manifests == nil {
		kept.Manifests = []imgspecv1.Descriptor{}
	}
	b, err := json.Marshal(&kept)
	if err != nil {
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	if err := atomicfile.WriteFile(filepath.Join(r.path, IndexFile), b, 0o644); err != nil {
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	if err := collectGarbage(root, &kept, r.path); err != nil {
		return errors.Wrapf(err, "deleted %s, but not its unreferenced blobs", types.ImageName(r))
	}
	return nil
}

// openLayout opens an existing layout directory and checks its version. A directory that
// holds no layout yet (noLayoutYet), or whose first image a writer is committing (oci-layout
// without index.json), holds no image: types.ErrManifestNotFound.
func openLayout(r reference) (*os.Root, error) {
	root, err := os.OpenRoot(r.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "layout directory %s does not exist", r.path)
		}
		return nil, pathformat.NotDirectory("oci", r.path, false, err)
	}
	if err := checkLayoutVersion(root.FS(), r.path); err != nil {
		if _, serr := fs.Stat(root.FS(), LayoutFile); errors.Is(serr, fs.ErrNotExist) {
			if empty, _ := noLayoutYet(root.FS(), r.path); empty {
				// What a sync or copy into it finds, so that it writes the first image.
				err = errors.Wrapf(types.ErrManifestNotFound, "layout directory %s holds no layout yet", r.path)
			}
		}
		root.Close()
		return nil, err
	}
	if _, err := fs.Stat(root.FS(), IndexFile); errors.Is(err, fs.ErrNotExist) {
		// A writer creating the layout writes oci-layout and the blobs of its first image,
		// then index.json (publishBlobs, updateIndex), as checkWritableLayout accepts: a sync
		// running beside the one that creates the layout must find no image there yet, not
		// an invalid layout.
		root.Close()
		return nil, errors.Wrapf(types.ErrManifestNotFound, "layout %s holds no image yet (no %s)", r.path, IndexFile)
	}
	return root, nil
}

// collectGarbage deletes the blobs that no entry of idx references. When a manifest cannot
// be read it deletes nothing, since it cannot know what that manifest needs.
func collectGarbage(root *os.Root, idx *imgspecv1.Index, where string) error {
	used := map[digest.Digest]bool{}
	for _, desc := range idx.Manifests {
		err := walk(root.FS(), desc, where, nil, func(d imgspecv1.Descriptor) error {
			used[d.Digest] = true
			return nil
		})
		if err != nil {
			return err
		}
	}
	algs, err := fs.ReadDir(root.FS(), blobsDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		dir := path.Join(blobsDir, alg.Name())
		blobs, err := fs.ReadDir(root.FS(), dir)
		if err != nil {
			return err
		}
		for _, b := range blobs {
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), b.Name())
			if b.IsDir() || d.Validate() != nil || used[d] {
				continue // not a blob we understand, or still needed
			}
			if err := root.Remove(path.Join(dir, b.Name())); err != nil {
				return err
			}
			logrus.WithFields(logrus.Fields{"digest": d, "layout": where}).Debug("removed unreferenced blob")
		}
	}
	return nil
}

var _ types.TagDeleter = reference{}

// DeleteTag implements types.TagDeleter: a layout deletes by name anyway (DeleteImage keeps
// the image for its other names), so this is DeleteImage for a reference with a name alone.
func (r reference) DeleteTag(ctx context.Context, sys *types.SystemContext) error {
	if r.name == "" || r.digest != "" {
		return errors.Wrapf(types.ErrUsage, "deleting a tag: %s does not name a tag alone", types.ImageName(r))
	}
	return r.DeleteImage(ctx, sys)
}
