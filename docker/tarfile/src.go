package tarfile

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"iter"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// source reads one image of a docker archive.
type source struct {
	ref        types.ImageReference
	r          *Reader
	ownsReader bool
	pos        int
	item       ManifestItem

	configDigest digest.Digest
	diffIDs      []digest.Digest

	// top is the original manifest or index from the archive's OCI layout part, when one
	// matches the manifest.json entry; children are the instances of such an index.
	top      []byte
	topType  string
	children map[digest.Digest]imgspecv1.Descriptor

	once      sync.Once
	synth     []byte
	synthType string
	synthErr  error
	layers    map[digest.Digest]servedLayer
}

// servedLayer is a layer of a synthesized manifest.
type servedLayer struct {
	member      string
	size        int64
	compression string        // "" (the member must hash to the diff ID), "gzip" or "zstd"
	diffID      digest.Digest // what the content decompresses to
	// named: the compressed member hashed to the digest its name carries (a crane tarball's
	// <hex>.tar.gz) when the manifest was made, so it is served checked against that digest,
	// without decompressing a copy for its diff ID.
	named bool
}

var _ types.ImageSource = (*source)(nil)

// NewSource returns a source for the image at position pos of r (see Reader.Choose). When
// ownsReader is set, closing the source closes r (on error, r stays open). ref may be nil.
func NewSource(r *Reader, ownsReader bool, ref types.ImageReference, pos int) (types.ImageSource, error) {
	if pos < 0 || pos >= len(r.items) {
		return nil, errors.Wrapf(types.ErrManifestNotFound, "docker archive %s has no image @%d", r.path, pos)
	}
	s := &source{ref: ref, r: r, ownsReader: ownsReader, pos: pos, item: r.items[pos]}
	config, err := r.ReadMember(s.item.Config, iolimits.MaxConfigBodySize)
	if err != nil {
		return nil, s.archiveErr(err, "reading config %q", s.item.Config)
	}
	s.configDigest = digest.FromBytes(config)
	if want, ok := namedDigest(s.item.Config, ".json"); ok && want != s.configDigest {
		return nil, errors.Wrapf(types.DigestMismatchError{Expected: want.String(), Actual: s.configDigest.String(), ExpectedSize: -1, ActualSize: int64(len(config))},
			"image %s: config %q does not match the digest it is named after", r.imageName(pos), s.item.Config)
	}
	if s.diffIDs, err = manifest.ConfigDiffIDs(config); err != nil {
		return nil, s.archiveErr(err, "parsing config %q", s.item.Config)
	}
	if len(s.diffIDs) != len(s.item.Layers) {
		return nil, errors.Wrapf(ErrInvalidArchive, "image %s: config lists %d layers, manifest.json %d",
			r.imageName(pos), len(s.diffIDs), len(s.item.Layers))
	}
	for _, l := range s.item.Layers {
		if _, err := r.index.Lookup(l); err != nil {
			return nil, s.archiveErr(err, "layer %q", l)
		}
	}
	if err := s.findOCIManifest(); err != nil {
		return nil, err
	}
	return s, nil
}

// archiveErr wraps err naming the image; a missing member is an invalid archive.
func (s *source) archiveErr(err error, format string, args ...any) error {
	if errors.Is(err, fs.ErrNotExist) {
		err = errors.Wrap(ErrInvalidArchive, err.Error())
	}
	return errors.Wrapf(errors.Wrapf(err, format, args...), "image %s", s.r.imageName(s.pos))
}

// name renders the image for messages: its reference, or its position in the archive when it
// has none (an image kept while the archive is rewritten).
func (s *source) name() string {
	if s.ref == nil {
		return "docker-archive:" + s.r.imageName(s.pos)
	}
	return types.ImageName(s.ref)
}

// Reference implements types.ImageSource.
func (s *source) Reference() types.ImageReference { return s.ref }

// Properties implements types.ImageSource. Members are read with ReadAt, so blobs can be
// served concurrently.
func (s *source) Properties() types.SourceProperties {
	return types.SourceProperties{ConcurrentBlobs: true}
}

// Close implements types.ImageSource.
func (s *source) Close() error {
	if s.ownsReader {
		return s.r.Close()
	}
	return nil
}

// GetManifest implements types.ImageSource. It returns the original manifest (or index) from
// the archive's OCI layout part when that part describes this image, else a manifest
// synthesized from manifest.json whose layer digests fit the bytes GetBlob serves.
func (s *source) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	var top []byte
	var topType string
	if s.top != nil {
		top, topType = s.top, s.topType
	} else {
		if err := s.synthesize(); err != nil {
			return nil, "", err
		}
		top, topType = s.synth, s.synthType
	}
	if instance == nil {
		return top, topType, nil
	}
	if desc, ok := s.children[*instance]; ok {
		b, err := s.readBlob(desc, iolimits.MaxManifestBodySize)
		if err != nil {
			return nil, "", errors.Wrapf(err, "reading manifest %s from %s", *instance, s.name())
		}
		return b, desc.MediaType, nil
	}
	if ok, _ := manifest.MatchesDigest(top, *instance); ok && !manifest.IsIndexType(topType) {
		return top, topType, nil
	}
	return nil, "", errors.Wrapf(types.ErrManifestNotFound, "manifest %s in %s", *instance, s.name())
}

// GetBlob implements types.ImageSource.
func (s *source) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	if err := info.Digest.Validate(); err != nil {
		return nil, -1, errors.Wrapf(err, "fetching blob %q", info.Digest)
	}
	if info.Digest == s.configDigest {
		return s.openMember(s.item.Config)
	}
	if s.top == nil {
		if err := s.synthesize(); err != nil {
			return nil, -1, err
		}
		if l, ok := s.layers[info.Digest]; ok {
			return s.openLayer(l, info.Digest)
		}
	}
	rc, n, err := s.openMember(blobPath(info.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, -1, errors.Wrapf(types.ErrBlobNotFound, "blob %s in %s", info.Digest, s.name())
	}
	return rc, n, err
}

// namedDigest returns the digest a member is named after, as the writers of docker archives
// name configs and compressed layers: blobs/sha256/<hex> (Docker 25+, imgcopy), sha256:<hex>
// (a crane config), or <hex> followed by ext (<hex>.json: a docker save or skopeo config;
// <hex>.tar.gz: a crane layer). Other names carry none.
func namedDigest(member, ext string) (digest.Digest, bool) {
	var d digest.Digest
	switch {
	case strings.HasPrefix(member, "blobs/"):
		alg, enc, ok := strings.Cut(strings.TrimPrefix(member, "blobs/"), "/")
		if !ok {
			return "", false
		}
		d = digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	case strings.HasPrefix(member, "sha256:"):
		d = digest.Digest(member)
	case strings.HasSuffix(member, ext) && !strings.Contains(member, "/"):
		d = digest.NewDigestFromEncoded(digest.SHA256, strings.TrimSuffix(member, ext))
	default:
		return "", false
	}
	return d, d.Validate() == nil
}

// compressedLayerExts are the extensions after the digest in the name of a compressed layer
// (crane writes .tar.gz whatever the compression).
var compressedLayerExts = []string{".tar.gz", ".tar.zst"}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

func (s *source) openMember(name string) (io.ReadCloser, int64, error) {
	sr, err := s.r.Open(name)
	if err != nil {
		return nil, -1, err
	}
	return io.NopCloser(sr), sr.Size(), nil
}

// openLayer serves a layer of a synthesized manifest, checked as it streams, so that a
// mismatch names the layer: an uncompressed one against its digest (its diff ID), a
// compressed one named after its digest against that digest (the name and the bytes agreed
// when the manifest was made), any other compressed one by its decompressed content against
// its diff ID (diffIDReader).
func (s *source) openLayer(l servedLayer, d digest.Digest) (io.ReadCloser, int64, error) {
	rc, n, err := s.openMember(l.member)
	if err != nil {
		return rc, n, err
	}
	if l.compression != "" && !l.named {
		return newDiffIDReader(rc, l.compression, l.diffID, l.member, s.r.path), n, nil
	}
	vr, err := verify.NewReader(rc, d, l.size)
	if err != nil {
		return nil, -1, err
	}
	return &layerReader{vr: vr, name: l.member, archive: s.r.path}, n, nil
}

type layerReader struct {
	vr      *verify.Reader
	name    string
	archive string
}

func (l *layerReader) Read(p []byte) (int, error) {
	n, err := l.vr.Read(p)
	if err != nil && err != io.EOF && errors.Is(err, types.ErrDigestMismatch) {
		err = errors.Wrapf(err, "layer %q in docker archive %s does not match its diff ID", l.name, l.archive)
	}
	return n, err
}

func (l *layerReader) Close() error { return nil }

// synthesize builds the manifest for a manifest.json entry without a matching OCI manifest.
func (s *source) synthesize() error {
	s.once.Do(func() { s.synthErr = s.doSynthesize() })
	return s.synthErr
}

func (s *source) doSynthesize() error {
	s.layers = map[digest.Digest]servedLayer{}
	facts := make([]layerFacts, len(s.item.Layers))
	zstd := false
	for i, l := range s.item.Layers {
		f, err := s.r.facts(l, s.diffIDs[i])
		if err != nil {
			return errors.Wrapf(err, "image %s", s.r.imageName(s.pos))
		}
		facts[i] = f
		zstd = zstd || f.compression == "zstd"
		named := false
		for _, ext := range compressedLayerExts {
			if want, ok := namedDigest(l, ext); ok && f.compression != "" {
				named = want == f.digest
				break
			}
		}
		s.layers[f.digest] = servedLayer{member: l, size: f.size, compression: f.compression, diffID: s.diffIDs[i], named: named}
	}
	configSize, err := s.memberSize(s.item.Config)
	if err != nil {
		return err
	}
	var m manifest.Manifest
	if zstd { // schema2 has no zstd layer type
		o := &manifest.OCI1{}
		o.Config = imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: s.configDigest, Size: configSize}
		for _, f := range facts {
			o.Layers = append(o.Layers, imgspecv1.Descriptor{MediaType: ociLayerType(f.compression), Digest: f.digest, Size: f.size})
		}
		m = o
	} else {
		s2 := &manifest.Schema2{Config: manifest.Schema2Descriptor{MediaType: manifest.DockerV2Schema2ConfigMediaType, Digest: s.configDigest, Size: configSize}}
		for _, f := range facts {
			mt := manifest.DockerV2SchemaLayerMediaTypeUncompressed
			if f.compression == "gzip" {
				mt = manifest.DockerV2Schema2LayerMediaType
			}
			s2.Layers = append(s2.Layers, manifest.Schema2Descriptor{MediaType: mt, Digest: f.digest, Size: f.size})
		}
		m = s2
	}
	b, err := m.Serialize()
	if err != nil {
		return errors.Wrap(err, "encoding synthesized manifest")
	}
	s.synth, s.synthType = b, m.MIMEType()
	logrus.WithFields(logrus.Fields{"image": s.r.imageName(s.pos), "digest": digest.FromBytes(b)}).Debug("synthesized manifest for docker archive image")
	return nil
}

func (s *source) memberSize(name string) (int64, error) {
	e, err := s.r.index.Lookup(name)
	if err != nil {
		return -1, s.archiveErr(err, "member %q", name)
	}
	return e.Size, nil
}

func ociLayerType(compression string) string {
	switch compression {
	case "gzip":
		return imgspecv1.MediaTypeImageLayerGzip
	case "zstd":
		return imgspecv1.MediaTypeImageLayerZstd
	}
	return imgspecv1.MediaTypeImageLayer
}

// readBlob reads a small blob (manifest, index) of the OCI layout part and checks its digest.
func (s *source) readBlob(desc imgspecv1.Descriptor, limit int) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, errors.Wrapf(ErrInvalidArchive, "descriptor digest %q: %v", desc.Digest, err)
	}
	b, err := s.r.ReadMember(blobPath(desc.Digest), limit)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.Wrapf(types.ErrManifestNotFound, "%v", err)
		}
		return nil, err
	}
	if err := manifest.CheckDigest(b, desc.Digest, -1); err != nil {
		return nil, errors.Wrapf(err, "blob %s", desc.Digest)
	}
	return b, nil
}

// findOCIManifest looks in index.json for a manifest (or an index with an instance) whose
// config and layers are the ones of the manifest.json entry, preferring entries named like
// the image. A missing or unusable OCI part is not an error: the manifest is synthesized.
func (s *source) findOCIManifest() error {
	x, err := s.r.readOCIIndex()
	if err != nil {
		return errors.Wrapf(err, "reading %s of docker archive %s", ociIndexFileName, s.r.path)
	}
	if x == nil {
		return nil
	}
	if x.parseErr != nil {
		logrus.WithField("archive", s.r.path).Warnf("ignoring unparseable %s: %v", ociIndexFileName, x.parseErr)
		return nil
	}
	var damaged error
	for i := range s.orderByName(x) {
		desc := x.idx.Manifests[i]
		if err := s.tryDescriptor(desc); err != nil {
			if errors.Is(err, types.ErrDigestMismatch) && damaged == nil {
				damaged = err
			}
			logrus.WithFields(logrus.Fields{"archive": s.r.path, "digest": desc.Digest}).Debugf("skipping %s entry: %v", ociIndexFileName, err)
			continue
		}
		if s.top != nil {
			return nil
		}
	}
	if damaged != nil {
		// A manifest of the OCI part that does not match its digest is damage, not an
		// absent OCI part: it may be this image's, whose digest a synthesized manifest
		// would silently change.
		return errors.Wrapf(damaged, "image %s: a manifest in %s of docker archive %s", s.r.imageName(s.pos), ociIndexFileName, s.r.path)
	}
	return nil
}

// orderByName yields the positions of the descriptors of x, those whose name annotation is
// one of the entry's RepoTags first, each group in index order. The others are only visited
// when no named one matched, so that finding each image of an archive by its name does not
// scan the whole index.
func (s *source) orderByName(x *ociIndex) iter.Seq[int] {
	var named []int
	for _, nt := range s.r.meta.tags[s.pos] {
		named = append(named, x.byName[NameTag(nt)]...)
	}
	slices.Sort(named)
	named = slices.Compact(named)
	return func(yield func(int) bool) {
		for _, i := range named {
			if !yield(i) {
				return
			}
		}
		for i := range x.idx.Manifests {
			if _, isNamed := slices.BinarySearch(named, i); !isNamed && !yield(i) {
				return
			}
		}
	}
}

// annotatedName returns the normalized name:tag an index.json entry carries, or "".
func annotatedName(a map[string]string) string {
	for _, k := range []string{annotationContainerName, annotationRefName} {
		n, err := reference.ParseNormalizedNamed(a[k])
		if err != nil {
			continue
		}
		if nt, ok := n.(reference.NamedTagged); ok {
			return NameTag(nt)
		}
	}
	return ""
}

// tryDescriptor sets s.top when desc (or, for an index, one of its instances) matches.
func (s *source) tryDescriptor(desc imgspecv1.Descriptor) error {
	b, err := s.readBlob(desc, iolimits.MaxManifestBodySize)
	if err != nil {
		return err
	}
	mt := blobMIMEType(desc.MediaType, b)
	switch {
	case isManifestType(mt):
		if s.matches(b, mt) {
			s.top, s.topType = b, mt
		}
		return nil
	case manifest.IsIndexType(mt):
		var idx imgspecv1.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return err
		}
		return s.tryIndex(b, mt)
	}
	return errors.Errorf("unsupported media type %q", mt)
}

// tryIndex sets s.top to the index b when one of its instances (or of its nested indexes')
// matches. When the archive lacks some instances (Docker 25 saves only the local platform of a
// multi-platform image), the matching instance itself becomes the top-level manifest.
func (s *source) tryIndex(b []byte, mt string) error {
	children := map[digest.Digest]imgspecv1.Descriptor{}
	match, matchType, complete, err := s.scanIndex(b, children, 0)
	if err != nil {
		return err
	}
	switch {
	case match == nil:
	case complete:
		s.top, s.topType, s.children = b, mt, children
	default:
		s.top, s.topType = match, matchType
	}
	return nil
}

// scanIndex reads the instances of index b, depth levels of nested indexes down, into
// children, and returns the first that matches the entry and whether every one is present.
func (s *source) scanIndex(b []byte, children map[digest.Digest]imgspecv1.Descriptor, depth int) (match []byte, matchType string, complete bool, err error) {
	var idx imgspecv1.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, "", false, err
	}
	complete = true
	for _, child := range idx.Manifests {
		children[child.Digest] = child
		cb, err := s.readBlob(child, iolimits.MaxManifestBodySize)
		if errors.Is(err, types.ErrDigestMismatch) {
			return nil, "", false, err // damaged, not left out as Docker 25 leaves other platforms out
		}
		if err != nil {
			complete = false
			continue
		}
		ct := blobMIMEType(child.MediaType, cb)
		if manifest.IsIndexType(ct) && depth < manifest.MaxIndexDepth {
			m, mt, c, err := s.scanIndex(cb, children, depth+1)
			if err != nil {
				return nil, "", false, err
			}
			complete = complete && c
			if match == nil {
				match, matchType = m, mt
			}
			continue
		}
		if match == nil && isManifestType(ct) && s.matches(cb, ct) {
			match, matchType = cb, ct
		}
	}
	return match, matchType, complete, nil
}

// matches reports whether manifest b has the entry's config and, in order, its layer files.
func (s *source) matches(b []byte, mimeType string) bool {
	m, err := manifest.FromBlob(b, mimeType)
	if err != nil || m.ConfigInfo().Digest != s.configDigest || len(m.LayerInfos()) != len(s.item.Layers) {
		return false
	}
	for i, l := range m.LayerInfos() {
		want, err1 := s.r.resolve(s.item.Layers[i])
		got, err2 := s.r.resolve(blobPath(l.Digest))
		if err1 != nil || err2 != nil || want != got {
			return false
		}
	}
	return true
}
