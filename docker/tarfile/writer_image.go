package tarfile

import (
	"bytes"
	"context"
	"encoding/json"
	"path"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
)

// Image is one image to list in an archive.
type Image struct {
	// Manifest is the single-platform manifest that manifest.json describes (schema2 or OCI);
	// its config and layers must already be stored.
	Manifest []byte
	// Top and TopType are what index.json names: Manifest itself, or the index it belongs to
	// (whose instances must already be stored with PutManifestBlob). Ignored in classic mode.
	Top     []byte
	TopType string
	// Names become RepoTags, repositories entries and index.json name annotations.
	Names []reference.NamedTagged
}

// PutManifestBlob stores a manifest or index as blobs/<alg>/<hex> (not in classic mode).
func (w *Writer) PutManifestBlob(b []byte) error {
	if w.classic {
		return nil
	}
	d := digest.FromBytes(b)
	return w.store.AddBlob(d, int64(len(b)), bytes.NewReader(b), blobPath(d))
}

// AddImage lists img in the archive. Its blobs must have been stored already.
func (w *Writer) AddImage(img Image) error {
	m, err := manifest.FromBlob(img.Manifest, "")
	if err != nil {
		return errors.Wrap(err, "parsing manifest")
	}
	if err := w.PutManifestBlob(img.Manifest); err != nil {
		return err
	}
	if img.Top == nil {
		img.Top, img.TopType = img.Manifest, m.MIMEType()
	}
	if err := w.PutManifestBlob(img.Top); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	item, err := w.itemLocked(m)
	if err != nil {
		return err
	}
	if w.classic {
		if err := w.legacyMetadataLocked(m, img.Names); err != nil {
			return err
		}
	} else {
		w.addOCIEntriesLocked(img.Top, img.TopType, img.Names)
		for _, n := range img.Names {
			w.addRepositoryLocked(n, m.ConfigInfo().Digest.Encoded())
		}
	}
	w.addRepoTagsLocked(item, img.Names)
	return nil
}

// itemLocked returns the manifest.json entry for m, adding it when new.
func (w *Writer) itemLocked(m manifest.Manifest) (int, error) {
	configDigest := m.ConfigInfo().Digest
	cfg, ok := w.store.Blob(configDigest)
	if !ok {
		return -1, errors.Errorf("config %s was not stored in the archive", configDigest)
	}
	it := ManifestItem{Config: cfg.Member, RepoTags: []string{}}
	for _, l := range m.LayerInfos() {
		b, ok := w.store.Blob(l.Digest)
		if !ok {
			return -1, errors.Errorf("layer %s was not stored in the archive", l.Digest)
		}
		it.Layers = append(it.Layers, b.Member)
	}
	var err error
	if it.LayerSources, err = w.layerSourcesLocked(m); err != nil {
		return -1, err
	}
	if i, ok := w.itemByConfig[configDigest]; ok {
		return i, nil
	}
	w.items = append(w.items, it)
	w.itemByConfig[configDigest] = len(w.items) - 1
	return len(w.items) - 1, nil
}

func (w *Writer) addRepoTagsLocked(item int, names []reference.NamedTagged) {
	it := &w.items[item]
	for _, n := range names {
		s := NameTag(n)
		known := false
		for _, t := range it.RepoTags {
			known = known || t == s
		}
		if !known {
			it.RepoTags = append(it.RepoTags, s)
		}
	}
}

func (w *Writer) addRepositoryLocked(n reference.NamedTagged, id string) {
	if w.repositories[n.Name()] == nil {
		w.repositories[n.Name()] = map[string]string{}
	}
	w.repositories[n.Name()][n.Tag()] = id
}

// addOCIEntriesLocked names top in index.json once per name (once without a name).
func (w *Writer) addOCIEntriesLocked(top []byte, topType string, names []reference.NamedTagged) {
	d := digest.FromBytes(top)
	add := func(ann map[string]string) {
		for _, e := range w.ociEntries {
			if e.Digest == d && e.Annotations[annotationRefName] == ann[annotationRefName] {
				return
			}
		}
		w.ociEntries = append(w.ociEntries, imgspecv1.Descriptor{MediaType: topType, Digest: d, Size: int64(len(top)), Annotations: ann})
	}
	if len(names) == 0 {
		add(nil)
	}
	for _, n := range names {
		add(map[string]string{annotationRefName: NameTag(n), annotationContainerName: NameTag(n)})
	}
}

// layerSourcesLocked returns the LayerSources of a manifest.json entry, as `docker save`
// writes them: the descriptor (with its URLs) of each foreign layer, keyed by the layer's
// diff ID, so that a reader knows the layer is foreign (Docker keeps it a reference when
// pushing the loaded image). nil when m has no foreign layer.
func (w *Writer) layerSourcesLocked(m manifest.Manifest) (map[string]json.RawMessage, error) {
	var diffIDs []digest.Digest
	var out map[string]json.RawMessage
	for i, l := range m.LayerInfos() {
		if !manifest.IsForeignLayer(l.MediaType) {
			continue
		}
		if diffIDs == nil {
			config, err := w.store.ReadBlob(m.ConfigInfo().Digest, iolimits.MaxConfigBodySize)
			if err != nil {
				return nil, err
			}
			if diffIDs, err = manifest.ConfigDiffIDs(config); err != nil {
				return nil, errors.Wrap(err, "reading the diff IDs of foreign layers")
			}
		}
		if i >= len(diffIDs) {
			return nil, errors.Errorf("foreign layer %s has no diff ID in the config", l.Digest)
		}
		desc, err := json.Marshal(imgspecv1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size, URLs: l.URLs})
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[diffIDs[i].String()] = desc
	}
	return out, nil
}

// legacyMetadataLocked writes the per-layer directories of the classic format (<id>/VERSION,
// <id>/json, <id>/layer.tar -> ../<hex>.tar) and records the top layer ID in repositories.
// Layer IDs are derived from the chain of layer digests and the config, as in
// docker/docker/layer.CreateChainID, so they are stable and unique.
func (w *Writer) legacyMetadataLocked(m manifest.Manifest, names []reference.NamedTagged) error {
	layers := m.LayerInfos()
	config, err := w.store.ReadBlob(m.ConfigInfo().Digest, iolimits.MaxConfigBodySize)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return errors.Wrap(err, "parsing image config")
	}
	var chain digest.Digest
	parent := ""
	for i, l := range layers {
		if chain == "" {
			chain = l.Digest
		} else {
			chain = digest.FromString(chain.String() + " " + l.Digest.String())
		}
		v1 := map[string]any{}
		if parent != "" {
			v1["parent"] = parent
		}
		if i == len(layers)-1 {
			for _, k := range []string{"architecture", "config", "container", "container_config", "created", "docker_version", "os"} {
				if v, ok := fields[k]; ok {
					v1[k] = v
				}
			}
		}
		v1["layer_id"] = chain
		idSeed, err := json.Marshal(v1)
		if err != nil {
			return errors.Wrap(err, "encoding legacy layer config")
		}
		delete(v1, "layer_id")
		id := digest.FromBytes(idSeed).Encoded()
		v1["id"] = id
		layer, _ := w.store.Blob(l.Digest) // itemLocked checked it
		if err := w.legacyLayerLocked(id, layer.Member, v1); err != nil {
			return err
		}
		parent = id
	}
	if parent == "" {
		return nil
	}
	for _, n := range names {
		w.addRepositoryLocked(n, parent)
	}
	return nil
}

func (w *Writer) legacyLayerLocked(id, layerMember string, v1 map[string]any) error {
	if w.legacyLayers[id] {
		return nil
	}
	b, err := json.Marshal(v1)
	if err != nil {
		return errors.Wrap(err, "encoding legacy layer config")
	}
	if err := w.store.AddSymlink(path.Join(id, legacyLayerFileName), path.Join("..", layerMember)); err != nil {
		return err
	}
	if err := w.store.AddFile(path.Join(id, legacyVersionFile), []byte("1.0")); err != nil {
		return err
	}
	if err := w.store.AddFile(path.Join(id, legacyConfigFileName), b); err != nil {
		return err
	}
	w.legacyLayers[id] = true
	return nil
}

// Commit adds the images of the archive now at the path that no new image replaces (see
// keepOthers), writes manifest.json, repositories and (unless classic) the OCI layout files,
// and renames the archive into place. Without any new image it fails and leaves nothing
// behind.
func (w *Writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	n := len(w.items)
	w.mu.Unlock()
	w.closePrevious()
	if n == 0 {
		w.store.Abort()
		return errors.Errorf("writing docker archive %s: no image was added", w.Path())
	}
	err := w.store.Commit(ctx, func() error {
		if w.store.Streamed() {
			return w.finish()
		}
		cur, err := openCurrent(ctx, w.Path(), w.tempDir) // it may have changed since we started
		if err != nil {
			return err
		}
		if cur != nil {
			defer cur.Close()
			if err := w.keepOthers(ctx, cur); err != nil {
				return err
			}
		}
		return w.finish()
	})
	if err != nil {
		return errors.Wrapf(err, "writing docker archive %s", w.Path())
	}
	logrus.WithFields(logrus.Fields{"path": w.Path(), "new images": n}).Debug("docker archive written")
	return nil
}

type jsonFile struct {
	name string
	v    any
}

// finish writes the metadata files; Store.Commit calls it.
func (w *Writer) finish() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	files := []jsonFile{{manifestFileName, w.items}, {repositoriesFileName, w.repositories}}
	if !w.classic {
		index := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: w.ociEntries}
		files = append(files, jsonFile{ociLayoutFileName, imgspecv1.ImageLayout{Version: imgspecv1.ImageLayoutVersion}}, jsonFile{ociIndexFileName, index})
	}
	for _, f := range files {
		b, err := json.Marshal(f.v)
		if err != nil {
			return errors.Wrapf(err, "encoding %s", f.name)
		}
		if err := w.store.AddFile(f.name, b); err != nil {
			return err
		}
	}
	return nil
}

// Abort abandons the archive: the temporary file is removed and nothing appears at the path.
// It is a no-op after a successful Commit.
func (w *Writer) Abort() {
	w.closePrevious()
	w.store.Abort()
}
