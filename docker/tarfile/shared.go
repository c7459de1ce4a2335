package tarfile

import (
	"encoding/json"
	"io/fs"
	"sync/atomic"

	"github.com/distribution/reference"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/fileid"
	"github.com/imgcopy/imgcopy/internal/iolimits"
)

// Listing, inspecting or verifying an archive of n images opens each image with a Reader of
// its own, and each read and parsed manifest.json (parsing every RepoTag), and index.json, and
// then scanned every name of the archive to find its own: quadratic (2,000 images: 99 s). What
// is parsed from these two members is kept here, with name lookup tables built once, keyed by
// the member's ID (the archive's fileid.ID with the member's offset and size) or, for an
// archive without one, by the member's bytes.

// archiveItems is a parsed manifest.json. It is never modified once built.
type archiveItems struct {
	items  []ManifestItem
	tags   [][]reference.NamedTagged // per item, its RepoTags parsed
	byName map[string][]int          // NameTag → the positions of the items carrying it, ascending
}

func newArchiveItems(items []ManifestItem) *archiveItems {
	a := &archiveItems{items: items, tags: make([][]reference.NamedTagged, len(items)), byName: map[string][]int{}}
	for i, it := range items {
		for _, t := range it.RepoTags {
			nt, err := parseRepoTag(t)
			if err != nil {
				continue
			}
			a.tags[i] = append(a.tags[i], nt)
			if pos := a.byName[NameTag(nt)]; len(pos) == 0 || pos[len(pos)-1] != i {
				a.byName[NameTag(nt)] = append(pos, i)
			}
		}
	}
	return a
}

// ociIndex is a parsed index.json of the archive's OCI layout part. It is never modified
// once built.
type ociIndex struct {
	idx      imgspecv1.Index
	parseErr error            // index.json did not parse: there is no usable OCI part
	byName   map[string][]int // annotatedName → the positions of the descriptors carrying it, ascending
}

func newOCIIndex(b []byte) *ociIndex {
	x := &ociIndex{byName: map[string][]int{}}
	if x.parseErr = json.Unmarshal(b, &x.idx); x.parseErr != nil {
		return x
	}
	for i, d := range x.idx.Manifests {
		if n := annotatedName(d.Annotations); n != "" {
			x.byName[n] = append(x.byName[n], i)
		}
	}
	return x
}

var (
	lastItems fileid.Last[archiveItems]
	lastIndex fileid.Last[ociIndex]

	// manifestReads and indexReads count the reads of manifest.json and index.json, and
	// manifestParses its parses, for tests.
	manifestReads, indexReads, manifestParses atomic.Int64
)

// memberID returns the ID of the content of member name: zero when the archive has none.
func (r *Reader) memberID(name string) (fileid.ID, error) {
	e, err := r.index.Lookup(name)
	if err != nil {
		return fileid.ID{}, err
	}
	return r.file.ID().Part(e.Offset, e.Size), nil
}

// readShared returns what parse makes of member name (capped at iolimits.MaxIndexFileSize),
// kept in last: the member is read only when its ID is not the one kept, and parsed only
// when its bytes are not either. A missing member is fs.ErrNotExist (wrapped).
func readShared[T any](r *Reader, name string, last *fileid.Last[T], reads *atomic.Int64, parse func([]byte) (*T, error)) (*T, error) {
	id, err := r.memberID(name)
	if err != nil {
		return nil, err
	}
	if v := last.Get(id, nil); v != nil {
		return v, nil
	}
	reads.Add(1)
	b, err := r.ReadMember(name, iolimits.MaxIndexFileSize)
	if err != nil {
		return nil, err
	}
	if v := last.Get(id, b); v != nil {
		return v, nil
	}
	v, err := parse(b)
	if err != nil {
		return nil, err
	}
	last.Put(r.path+"\x00"+name, id, b, v)
	return v, nil
}

// readItems returns the parsed manifest.json of the archive.
func (r *Reader) readItems() (*archiveItems, error) {
	return readShared(r, manifestFileName, &lastItems, &manifestReads, func(b []byte) (*archiveItems, error) {
		manifestParses.Add(1)
		items, err := ParseManifestJSON(b)
		if err != nil {
			return nil, err
		}
		return newArchiveItems(items), nil
	})
}

// readOCIIndex returns the parsed index.json of the archive, read once per Reader; nil when
// the archive has none.
func (r *Reader) readOCIIndex() (*ociIndex, error) {
	r.ociOnce.Do(func() {
		r.oci, r.ociErr = readShared(r, ociIndexFileName, &lastIndex, &indexReads, func(b []byte) (*ociIndex, error) {
			return newOCIIndex(b), nil
		})
		if errors.Is(r.ociErr, fs.ErrNotExist) {
			r.oci, r.ociErr = nil, nil
		}
	})
	return r.oci, r.ociErr
}
