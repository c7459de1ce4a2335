package layout

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/fileid"
	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// Names of the layout's fixed files.
const (
	// LayoutFile is the oci-layout marker file.
	LayoutFile = imgspecv1.ImageLayoutFile
	// IndexFile is the layout's top-level index.
	IndexFile = "index.json"
	// LockFile serializes writers of index.json (and blob garbage collection) in a directory layout.
	LockFile = "index.json.lock"
	blobsDir = imgspecv1.ImageBlobsDir
	// containerdNameAnnotation is the full reference containerd and Docker write next to ref.name.
	containerdNameAnnotation = "io.containerd.image.name"
	// maxIndexDepth bounds the nesting of indexes inside indexes.
	maxIndexDepth = 8
)

// ErrInvalidLayout is types.ErrInvalidLayout, returned (wrapped, naming the file and the
// problem) when the content of a layout is malformed or inconsistent: an unknown oci-layout
// version, a bad descriptor, a blob that escapes the layout, an index nesting into itself.
var ErrInvalidLayout = types.ErrInvalidLayout

// BlobPath returns the slash-separated path of a blob inside a layout, after validating d so
// that a hostile digest can never name a path outside blobs/.
func BlobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errors.Wrapf(err, "invalid digest %q", d)
	}
	return path.Join(blobsDir, d.Algorithm().String(), d.Encoded()), nil
}

// checkLayoutVersion reads the oci-layout file and refuses versions other than 1.x.
func checkLayoutVersion(fsys fs.FS, where string) error {
	b, err := readSmall(fsys, LayoutFile, 64<<10)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return otherFormat(fsys, where, errors.Wrapf(ErrInvalidLayout, "%s: missing %s file", where, LayoutFile))
		}
		return errors.Wrapf(err, "reading %s in %s", LayoutFile, where)
	}
	var l imgspecv1.ImageLayout
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.Wrapf(ErrInvalidLayout, "%s in %s: %v", LayoutFile, where, err)
	}
	if !strings.HasPrefix(l.Version, "1.") {
		return errors.Wrapf(ErrInvalidLayout, "%s in %s: unsupported imageLayoutVersion %q (want 1.x)", LayoutFile, where, l.Version)
	}
	return nil
}

// otherFormat returns err, or, when fsys (without an oci-layout file) holds another
// transport's images, a types.WrongFormatError naming the reference that reads where: a
// manifest.json beside a version file is a dir: image, a manifest.json alone a docker save
// archive.
func otherFormat(fsys fs.FS, where string, err error) error {
	if _, serr := fs.Stat(fsys, "manifest.json"); serr != nil {
		return err
	}
	if _, serr := fs.Stat(fsys, "version"); serr == nil {
		return &types.WrongFormatError{Err: err, Holds: "a dir: image", Use: "dir:" + where}
	}
	return &types.WrongFormatError{Err: err, Holds: "a docker save archive", Use: "docker-archive:" + where}
}

func readSmall(fsys fs.FS, name string, limit int) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return iolimits.ReadAtMost(f, limit)
}

// ReadIndex checks the oci-layout file in fsys and returns the validated index.json; where
// names the layout in errors.
func ReadIndex(fsys fs.FS, where string) (*imgspecv1.Index, error) {
	if err := checkLayoutVersion(fsys, where); err != nil {
		return nil, err
	}
	return readIndexFile(fsys, where)
}

// readLayoutShared is ReadIndex for callers that only read the index (see readIndexShared).
func readLayoutShared(fsys fs.FS, where string) (*imgspecv1.Index, error) {
	if err := checkLayoutVersion(fsys, where); err != nil {
		return nil, err
	}
	return readIndexShared(fsys, where)
}

// readIndexFile reads and validates index.json.
func readIndexFile(fsys fs.FS, where string) (*imgspecv1.Index, error) {
	b, _, err := readIndexBytes(fsys, where)
	if err != nil {
		return nil, err
	}
	return ParseIndex(b, IndexFile+" in "+where)
}

// indexReads counts the reads of index.json, for tests.
var indexReads atomic.Int64

// readIndexBytes reads index.json and returns it with the fileid.Stable ID of what was read.
func readIndexBytes(fsys fs.FS, where string) ([]byte, fileid.ID, error) {
	indexReads.Add(1)
	f, err := fsys.Open(IndexFile)
	if err == nil {
		defer f.Close()
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil {
			var b []byte
			if b, err = iolimits.ReadAtMost(f, iolimits.MaxIndexFileSize); err == nil {
				return b, fileid.Stable(fi), nil
			}
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileid.ID{}, errors.Wrapf(ErrInvalidLayout, "%s: missing %s file", where, IndexFile)
	}
	return nil, fileid.ID{}, errors.Wrapf(err, "reading %s in %s", IndexFile, where)
}

// lastIndex is the index.json readIndexShared parsed last, with the ID of its file (or, for a
// file that has none, its bytes). Listing, inspecting or verifying a layout of n images opens
// each, and each open read and parsed index.json: quadratic, so that a 3.7 MB index.json of
// 15,000 entries took minutes to list.
var lastIndex fileid.Last[imgspecv1.Index]

// readIndexShared is readIndexFile for callers that only read the index. While index.json
// keeps the ID it had when it was parsed last (one stat tells; see fileid.Stable), it is
// neither read nor parsed again; without an ID (a file written a moment ago, or no inodes),
// it is read, but not parsed again when its bytes are those parsed last. The caller must not
// modify the result.
func readIndexShared(fsys fs.FS, where string) (*imgspecv1.Index, error) {
	if fi, err := fs.Stat(fsys, IndexFile); err == nil {
		if idx := lastIndex.Get(fileid.Stable(fi), nil); idx != nil {
			return idx, nil
		}
	}
	if idx := readKeptIndex(fsys); idx != nil {
		return idx, nil
	}
	b, id, err := readIndexBytes(fsys, where)
	if err != nil {
		return nil, err
	}
	if idx := lastIndex.Get(id, b); idx != nil {
		return idx, nil
	}
	idx, err := ParseIndex(b, IndexFile+" in "+where)
	if err != nil {
		return nil, err
	}
	lastIndex.Put(where, id, b, idx)
	return idx, nil
}

// compareBuffers holds the buffers readKeptIndex reads index.json into.
var compareBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// readKeptIndex returns the index kept (lastIndex) that index.json holds the bytes of, or nil:
// it compares the file with the kept bytes piece by piece as it reads it, instead of reading
// it whole into memory. A sync into a layout reads its index.json, rewritten a moment before,
// twice for every image (to open the destination and to look for the manifest): whole, that
// was a new buffer of the index's size each time, half the CPU time of a sync of 3,000 tags
// of one image spent allocating and collecting them.
func readKeptIndex(fsys fs.FS) *imgspecv1.Index {
	f, err := fsys.Open(IndexFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	kept := lastIndex.Contents(fi.Size())
	if len(kept) == 0 {
		return nil
	}
	indexReads.Add(1)
	bp := compareBuffers.Get().(*[]byte)
	defer compareBuffers.Put(bp)
	var off int64
	for len(kept) > 0 {
		n, err := f.Read(*bp)
		got := (*bp)[:n]
		kept = slices.DeleteFunc(kept, func(b []byte) bool {
			return int64(len(b)) < off+int64(n) || !bytes.Equal(b[off:off+int64(n)], got)
		})
		off += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil
		}
	}
	for _, b := range kept {
		if int64(len(b)) == off {
			return lastIndex.Get(fileid.ID{}, b)
		}
	}
	return nil
}

// indexParses counts the calls of ParseIndex, for tests.
var indexParses atomic.Int64

// ParseIndex parses and validates index.json content; where names it in errors. Every
// descriptor must have a valid digest of a known algorithm and a non-negative size.
func ParseIndex(b []byte, where string) (*imgspecv1.Index, error) {
	indexParses.Add(1)
	var idx imgspecv1.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, errors.Wrapf(ErrInvalidLayout, "%s: %v", where, err)
	}
	if idx.SchemaVersion != 2 {
		return nil, errors.Wrapf(ErrInvalidLayout, "%s: schemaVersion %d, want 2", where, idx.SchemaVersion)
	}
	for i, desc := range idx.Manifests {
		if err := checkDescriptor(desc); err != nil {
			return nil, errors.Wrapf(ErrInvalidLayout, "%s: manifests[%d]: %v", where, i, err)
		}
	}
	return &idx, nil
}

// checkDescriptor validates the fields a layout needs from a descriptor.
func checkDescriptor(desc imgspecv1.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return errors.Wrapf(err, "invalid digest %q", desc.Digest)
	}
	if desc.Size < 0 {
		return errors.Errorf("descriptor %s has negative size %d", desc.Digest, desc.Size)
	}
	return nil
}

// EmptyIndex returns the index.json of a new layout.
func EmptyIndex() *imgspecv1.Index {
	return &imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{}}
}

// readManifestBlob reads a manifest or index blob and checks it against its descriptor.
func readManifestBlob(fsys fs.FS, desc imgspecv1.Descriptor, where string) ([]byte, error) {
	p, err := BlobPath(desc.Digest)
	if err != nil {
		return nil, errors.Wrapf(ErrInvalidLayout, "%s: %v", where, err)
	}
	b, err := readSmall(fsys, p, iolimits.MaxManifestBodySize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "%s: manifest %s: %s is missing", where, desc.Digest, p)
		}
		return nil, errors.Wrapf(err, "%s: reading %s", where, p)
	}
	if err := manifest.CheckDigest(b, desc.Digest, desc.Size); err != nil {
		return nil, errors.Wrapf(err, "%s: %s does not match its descriptor", where, p)
	}
	return b, nil
}

// parsedManifest is the union of the fields that reference other blobs in every manifest
// format a layout may hold; it is deliberately lenient, as it only finds references.
type parsedManifest struct {
	MediaType string                 `json:"mediaType"`
	Config    *imgspecv1.Descriptor  `json:"config"`
	Layers    []imgspecv1.Descriptor `json:"layers"`
	Manifests []imgspecv1.Descriptor `json:"manifests"`
	Subject   *imgspecv1.Descriptor  `json:"subject"`
	FSLayers  []struct {
		BlobSum digest.Digest `json:"blobSum"`
	} `json:"fsLayers"`
}

// mimeTypeOf returns the descriptor's media type, or the guessed type of the content.
func mimeTypeOf(desc imgspecv1.Descriptor, b []byte) string {
	if desc.MediaType != "" {
		return desc.MediaType
	}
	return manifest.GuessMIMEType(b)
}

// isManifestType reports whether blobs of mediaType reference other blobs.
func isManifestType(mediaType string) bool {
	switch mediaType {
	case imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageIndex,
		manifest.DockerV2Schema2MediaType, manifest.DockerV2ListMediaType,
		manifest.DockerV2Schema1MediaType, manifest.DockerV2Schema1SignedMediaType:
		return true
	}
	return false
}

// children returns what a manifest or index references: the manifests of an index (to be
// walked) and the config and layers of an image (plain blobs).
func children(b []byte, where string) (manifests, blobs []imgspecv1.Descriptor, err error) {
	var m parsedManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, errors.Wrapf(ErrInvalidLayout, "%s: %v", where, err)
	}
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	blobs = append(blobs, m.Layers...)
	for i, c := range append(append([]imgspecv1.Descriptor{}, m.Manifests...), blobs...) {
		if err := checkDescriptor(c); err != nil {
			return nil, nil, errors.Wrapf(ErrInvalidLayout, "%s: reference %d: %v", where, i, err)
		}
	}
	for _, l := range m.FSLayers { // schema1: digests only
		if err := l.BlobSum.Validate(); err != nil {
			return nil, nil, errors.Wrapf(ErrInvalidLayout, "%s: fsLayers: invalid digest %q: %v", where, l.BlobSum, err)
		}
		blobs = append(blobs, imgspecv1.Descriptor{Digest: l.BlobSum, Size: -1})
	}
	return m.Manifests, blobs, nil
}

// Walk calls visit for desc and for every descriptor it references, through manifests and
// nested indexes (config and layers are visited, not read); every manifest read is checked
// against its descriptor. where names the layout in errors.
func Walk(fsys fs.FS, desc imgspecv1.Descriptor, where string, visit func(imgspecv1.Descriptor) error) error {
	return walk(fsys, desc, where, nil, visit)
}

// walk calls visit for desc and, through manifests and nested indexes, for every descriptor
// it references (config and layers are visited, not read). ancestors holds the digests of
// the indexes above desc, so an index that nests into itself is an error, not a loop.
func walk(fsys fs.FS, desc imgspecv1.Descriptor, where string, ancestors []digest.Digest, visit func(imgspecv1.Descriptor) error) error {
	if err := visit(desc); err != nil {
		return err
	}
	if desc.MediaType != "" && !isManifestType(desc.MediaType) {
		return nil // an artifact or other opaque blob at the top level
	}
	if slices.Contains(ancestors, desc.Digest) {
		return errors.Wrapf(ErrInvalidLayout, "%s: index %s nests into itself", where, desc.Digest)
	}
	if len(ancestors) > maxIndexDepth {
		return errors.Wrapf(ErrInvalidLayout, "%s: indexes nested more than %d levels deep at %s", where, maxIndexDepth, desc.Digest)
	}
	b, err := readManifestBlob(fsys, desc, where)
	if err != nil {
		return err
	}
	if desc.MediaType == "" && !isManifestType(manifest.GuessMIMEType(b)) {
		return nil
	}
	manifests, blobs, err := children(b, where+": manifest "+desc.Digest.String())
	if err != nil {
		return err
	}
	for _, c := range blobs {
		if err := visit(c); err != nil {
			return err
		}
	}
	ancestors = append(ancestors, desc.Digest)
	for _, c := range manifests {
		if err := walk(fsys, c, where, ancestors, visit); err != nil {
			return err
		}
	}
	return nil
}
