package copy

import (
	"fmt"
	"slices"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// This file holds every decision of a copy as a pure function: inputs struct in, plan struct
// out, no I/O. The engine gathers the inputs, calls these, and carries the plans out.

// Compression names used in plans; "" means uncompressed.
const (
	compressionNone = ""
	compressionGzip = "gzip"
	compressionZstd = "zstd"
)

// manifestPlanInput is everything the manifest-type decision depends on.
type manifestPlanInput struct {
	SrcMIMEType     string
	DestSupported   []string // nil: the destination takes any type
	Force           string   // Options.ForceManifestMIMEType
	LayersChange    bool     // some layer's digest or media type will change
	LayerChange     string   // what happens to the first layer that changes, for errors
	NeedsOCI        bool     // some written layer is zstd, which only OCI manifests describe
	PreserveDigests bool
	DestUnusable    []string // types the destination stores but its readers cannot use
}

// manifestPlan says which manifest types to try, in order.
type manifestPlan struct {
	Candidates []string
	// KeepOriginal: Candidates[0] is the source type and the source bytes are written unchanged.
	KeepOriginal bool
	Reason       string // for debug logs
}

// planManifest decides which manifest types to try writing. The source type comes first when
// the destination accepts it (byte-exact unless layers change); otherwise the destination's
// preferred types that we can convert to. Further candidates are fallbacks for a
// ManifestTypeRejectedError.
func planManifest(in manifestPlanInput) (manifestPlan, error) {
	accepts := func(t string) bool {
		return (in.DestSupported == nil || slices.Contains(in.DestSupported, t)) && !slices.Contains(in.DestUnusable, t)
	}
	if in.PreserveDigests && in.Force == "" && slices.Contains(in.DestUnusable, in.SrcMIMEType) {
		return manifestPlan{}, unusableTypeError(in.SrcMIMEType)
	}
	var p manifestPlan
	switch {
	case in.Force != "":
		if !isConversionTarget(in.Force) {
			return p, errors.Errorf("forcing manifest type %s: only %s and %s can be written by conversion",
				in.Force, manifest.DockerV2Schema2MediaType, imgspecv1.MediaTypeImageManifest)
		}
		if !accepts(in.Force) {
			return p, errors.Errorf("forcing manifest type %s: destination accepts only %s", in.Force, strings.Join(in.DestSupported, ", "))
		}
		p = manifestPlan{Candidates: []string{in.Force}, Reason: "manifest type forced"}
	case accepts(in.SrcMIMEType) && keepable(in):
		p = manifestPlan{Candidates: []string{in.SrcMIMEType}, Reason: "destination accepts the source manifest type"}
	default:
		p.Reason = "destination does not accept the source manifest type"
		if slices.Contains(in.DestUnusable, in.SrcMIMEType) {
			p.Reason = "the destination's readers cannot use the source manifest type"
		} else if manifest.IsSchema1Type(in.SrcMIMEType) && in.LayersChange {
			p.Reason = "layers change, schema1 manifests are converted rather than edited"
		} else if in.NeedsOCI && accepts(in.SrcMIMEType) {
			p.Reason = "zstd layers need an OCI manifest"
		}
	}
	p.Candidates = appendConversionCandidates(p.Candidates, in, accepts)
	if len(p.Candidates) == 0 {
		return p, errors.Errorf("no manifest type to write: source is %s, destination accepts only %s, conversions possible to %s and %s",
			in.SrcMIMEType, strings.Join(in.DestSupported, ", "), manifest.DockerV2Schema2MediaType, imgspecv1.MediaTypeImageManifest)
	}
	p.KeepOriginal = p.Candidates[0] == in.SrcMIMEType && !in.LayersChange
	if in.PreserveDigests {
		if !p.KeepOriginal {
			return p, errors.Errorf("preserving digests: %s", digestChangeReason(in, p))
		}
		p.Candidates = p.Candidates[:1] // fallbacks would change the digest
	}
	return p, nil
}

// keepable reports whether the source type can be written again (possibly with edited layers).
func keepable(in manifestPlanInput) bool {
	if manifest.IsSchema1Type(in.SrcMIMEType) {
		return !in.LayersChange && !in.NeedsOCI
	}
	return !(in.NeedsOCI && in.SrcMIMEType != imgspecv1.MediaTypeImageManifest)
}

// appendConversionCandidates adds the types we can convert to that the destination accepts:
// in the destination's order when it lists types, else OCI and schema2; schema1 puts schema2
// first unless the destination's readers cannot use schema1 (an OCI layout gets OCI); zstd
// layers put OCI first.
func appendConversionCandidates(c []string, in manifestPlanInput, accepts func(string) bool) []string {
	order := in.DestSupported
	if order == nil {
		order = []string{imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType}
	}
	var conv []string
	for _, t := range order {
		if isConversionTarget(t) && accepts(t) && !slices.Contains(c, t) && !slices.Contains(conv, t) {
			conv = append(conv, t)
		}
	}
	if manifest.IsSchema1Type(in.SrcMIMEType) && !slices.Contains(in.DestUnusable, in.SrcMIMEType) {
		// A destination that could keep schema1 but refuses it (or layers change) gets the
		// Docker family first, whatever order it lists: as skopeo converts schema1.
		slices.SortStableFunc(conv, func(a, b string) int {
			return boolRank(a == manifest.DockerV2Schema2MediaType, b == manifest.DockerV2Schema2MediaType)
		})
	}
	if in.NeedsOCI {
		slices.SortStableFunc(conv, func(a, b string) int {
			return boolRank(a == imgspecv1.MediaTypeImageManifest, b == imgspecv1.MediaTypeImageManifest)
		})
	}
	if in.Force != "" && len(c) > 0 {
		return c // a forced type has no fallbacks
	}
	return append(c, conv...)
}

// boolRank orders true before false.
func boolRank(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// unusableTypeError explains why a manifest type the destination's readers cannot use is
// not kept with PreserveDigests, and what to do instead.
func unusableTypeError(srcType string) error {
	why := "its readers cannot use " + srcType + " manifests"
	if manifest.IsSchema1Type(srcType) {
		why = "no OCI tool can use a Docker schema1 manifest (it has no image config), so schema1 is converted there"
	}
	return errors.Wrapf(types.ErrUsage, "preserving digests: the destination would store the manifest but %s, "+
		"which changes the digest; drop --preserve-digests to convert (--format oci or --format v2s2 picks the type), "+
		"or copy to dir: to keep the manifest byte for byte", why)
}

// digestChangeReason explains, for PreserveDigests, why the digest would change.
func digestChangeReason(in manifestPlanInput, p manifestPlan) string {
	switch {
	case len(p.Candidates) > 0 && p.Candidates[0] != in.SrcMIMEType && in.Force != "":
		return "the manifest would be converted from " + in.SrcMIMEType + " to the forced type " + p.Candidates[0]
	case len(p.Candidates) > 0 && p.Candidates[0] != in.SrcMIMEType:
		return "the manifest would be converted from " + in.SrcMIMEType + " to " + p.Candidates[0] + " because " + p.Reason
	case in.LayerChange != "":
		return in.LayerChange + ", so its digest and the manifest's would change"
	default:
		return "layer compression would change, so layer digests and the manifest would change"
	}
}

// describeLayerChange says what plan p does to layer i, for errors.
func describeLayerChange(i int, p layerPlan) string {
	name := func(c string) string {
		if c == compressionNone {
			return "uncompressed"
		}
		return c
	}
	switch p.Action {
	case layerDecompress:
		return fmt.Sprintf("layer %d would be decompressed (%s to uncompressed)", i, p.From)
	case layerCompress:
		return fmt.Sprintf("layer %d would be compressed with %s", i, p.To)
	case layerRecompress:
		return fmt.Sprintf("layer %d would be recompressed from %s to %s", i, p.From, p.To)
	}
	return fmt.Sprintf("layer %d would be written as %s (%s)", i, p.MediaType, name(p.To))
}

func isConversionTarget(t string) bool {
	return t == manifest.DockerV2Schema2MediaType || t == imgspecv1.MediaTypeImageManifest
}

// layerAction is what happens to a layer's bytes.
type layerAction int

const (
	layerKeep       layerAction = iota // copy unchanged
	layerDecompress                    // store uncompressed
	layerCompress                      // compress an uncompressed layer
	layerRecompress                    // decompress, then compress in another format
	layerSkip                          // a foreign layer the destination stores by reference
)

func (a layerAction) String() string {
	return [...]string{"keep", "decompress", "compress", "recompress", "skip"}[a]
}

// layerPlanInput is everything the decision about one layer depends on.
type layerPlanInput struct {
	MediaType          string
	Compression        string // compression of the source layer: "", "gzip", "zstd" or "unknown"
	Foreign            bool   // a foreign (non-distributable) layer type
	DestAcceptsForeign bool
	IncludeForeign     bool // Options.IncludeNonDistributable
	DestDesired        types.LayerCompression
	Compress           string // Options.DestinationCompression
	Decompress         bool   // Options.DestinationDecompress
	// NoZstd: the manifest will be Docker schema2 (forced, or the destination takes no OCI
	// manifest), which has no zstd layer type, so zstd layers become gzip.
	NoZstd bool
}

// layerPlan is what to do with one layer.
type layerPlan struct {
	Action    layerAction
	From, To  string // compression before and after
	MediaType string // media type to write in the manifest
	// Retyped: the written media type differs from the source's although the bytes may not
	// (a foreign layer included as a distributable one).
	Retyped bool
}

// transforms reports whether the layer's bytes (and so its digest) change.
func (p layerPlan) transforms() bool { return p.Action != layerKeep && p.Action != layerSkip }

// changes reports whether the layer's digest or media type changes.
func (p layerPlan) changes() bool { return p.transforms() || p.Retyped }

// planLayer decides what to do with one layer's compression. A destination that must have
// uncompressed layers wins over a requested compression; unknown compressions are kept.
//
// A foreign (non-distributable) layer is kept as a reference, not copied, where the
// destination can hold one (as Docker pushes them). With IncludeForeign it is copied and
// becomes an ordinary layer of the distributable type (so that registries serve it and no
// reader looks for it elsewhere). A destination that cannot hold a reference (a
// docker-archive, which `docker load` reads whole) gets the content with the foreign type
// kept, as `docker save` writes it.
func planLayer(in layerPlanInput) layerPlan {
	if in.Foreign {
		switch {
		case in.IncludeForeign:
			p := planLayer(layerPlanInput{MediaType: distributableLayerType(in.MediaType), Compression: in.Compression,
				DestDesired: in.DestDesired, Compress: in.Compress, Decompress: in.Decompress, NoZstd: in.NoZstd})
			p.Retyped = p.MediaType != in.MediaType
			return p
		case in.DestAcceptsForeign:
			return layerPlan{Action: layerSkip, From: in.Compression, To: in.Compression, MediaType: in.MediaType}
		case in.DestDesired == types.Decompress && (in.Compression == compressionGzip || in.Compression == compressionZstd):
			return layerPlan{Action: layerDecompress, From: in.Compression, To: compressionNone, MediaType: foreignUncompressedType(in.MediaType)}
		}
		return layerPlan{Action: layerKeep, From: in.Compression, To: in.Compression, MediaType: in.MediaType}
	}
	keep := layerPlan{Action: layerKeep, From: in.Compression, To: in.Compression, MediaType: in.MediaType}
	if in.Compression != compressionNone && in.Compression != compressionGzip && in.Compression != compressionZstd {
		return keep
	}
	want := in.Compression
	switch {
	case in.DestDesired == types.Decompress || in.Decompress:
		want = compressionNone
	case in.Compress != "":
		want = in.Compress
	case in.DestDesired == types.Compress && in.Compression == compressionNone && !isOCIType(in.MediaType):
		want = compressionGzip
	}
	if want == compressionZstd && in.NoZstd {
		want = compressionGzip
	}
	if want == in.Compression {
		return keep
	}
	p := layerPlan{From: in.Compression, To: want, MediaType: layerMediaType(in.MediaType, want)}
	switch {
	case want == compressionNone:
		p.Action = layerDecompress
	case in.Compression == compressionNone:
		p.Action = layerCompress
	default:
		p.Action = layerRecompress
	}
	return p
}

// blobBoundAnnotationPrefixes start the layer annotations that describe one compressed blob's
// bytes rather than its content: zstd:chunked's and eStargz's table-of-contents digests,
// offsets and sizes. Readers use them to fetch parts of that blob (lazy pulls, partial pulls),
// so they are wrong, and misleading, on any other blob of the same content.
var blobBoundAnnotationPrefixes = []string{
	"io.github.containers.zstd-chunked.", // zstd:chunked (containers/storage)
	"io.containers.zstd-chunked.",        // zstd:chunked as containers/storage wrote it before 1.45 (skopeo 1.9)
	"containerd.io/snapshot/stargz/",     // eStargz toc.digest (stargz-snapshotter)
	"io.containers.estargz.",             // eStargz uncompressed-size
}

// writtenLayerAnnotations returns the annotations for a layer written as written from the
// source layer src: unchanged when the blob is the source's, else without the annotations
// bound to the source blob's bytes (a recompressed or decompressed layer, or another
// compression's variant reused). The result is non-nil when something was dropped, so that
// manifest.Update does not restore the source's annotations.
func writtenLayerAnnotations(src, written types.BlobInfo) map[string]string {
	a := written.Annotations
	if a == nil {
		a = src.Annotations
	}
	if written.Digest == src.Digest || len(a) == 0 {
		return written.Annotations
	}
	out := make(map[string]string, len(a))
	for k, v := range a {
		if !slices.ContainsFunc(blobBoundAnnotationPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			out[k] = v
		}
	}
	if len(out) == len(a) {
		return written.Annotations
	}
	return out
}

// checkSchema2Only fails, before any blob is copied, when every manifest type the copy may
// write is Docker schema2 (--format v2s2, or a destination that stores nothing else) and the
// source manifest m has fields schema2 has no place for: the conversion, which comes after the
// blobs, would fail then, with every blob already uploaded.
func checkSchema2Only(m manifest.Manifest, candidates []string) error {
	if len(candidates) == 0 || slices.ContainsFunc(candidates, func(t string) bool { return t != manifest.DockerV2Schema2MediaType }) {
		return nil
	}
	return manifest.Schema2Expressible(m)
}

// encryptedSuffix ends the media type of an encrypted layer (ocicrypt): the blob is the
// encryption of a layer in the compression the rest of the type names.
const encryptedSuffix = "+encrypted"

// checkEncryptedLayer refuses to change the compression of layer i when it is encrypted:
// that needs the plaintext, and imgcopy never decrypts (skopeo silently keeps such a layer as
// it is, which breaks the promise that --dest-compress-format leaves every layer in its
// format). Asking for the compression the layer has inside its encryption is no change.
//
// A forced Docker schema2 manifest, which has no encrypted layer type, is refused here too,
// before any blob is copied, rather than when the manifest is converted at the end.
func checkEncryptedLayer(i int, mediaType, compress string, decompress bool, force string) error {
	if !strings.HasSuffix(mediaType, encryptedSuffix) {
		return nil
	}
	if force == manifest.DockerV2Schema2MediaType {
		return errors.Wrapf(types.ErrUsage, "layer %d is encrypted (%s), which a Docker schema2 manifest cannot describe: "+
			"write an OCI manifest (drop --format v2s2)", i, mediaType)
	}
	if compress == "" && !decompress {
		return nil
	}
	inner := manifest.LayerCompression(strings.TrimSuffix(mediaType, encryptedSuffix))
	want, flag := compress, "--dest-compress-format "+compress
	if decompress {
		want, flag = compressionNone, "--dest-decompress"
	}
	if inner == want {
		return nil
	}
	return errors.Wrapf(types.ErrUsage, "layer %d is encrypted (%s): its compression cannot be changed without "+
		"decrypting it, which imgcopy does not do; drop %s to copy it as it is", i, mediaType, flag)
}

// isOCIType reports whether mediaType is an OCI media type. An uncompressed OCI layer is valid
// registry content and is kept, so its digest survives; the uncompressed Docker layer type is
// not part of the registry's schema2 format, so a destination wanting compression gets gzip.
func isOCIType(mediaType string) bool {
	return strings.HasPrefix(mediaType, "application/vnd.oci.")
}

// layerMediaType returns the media type of a layer like mediaType but with compression c.
// Docker types have no zstd variant; the OCI one is used and the manifest must be OCI.
func layerMediaType(mediaType, c string) string {
	oci := isOCIType(mediaType) || c == compressionZstd
	switch {
	case oci && c == compressionGzip:
		return imgspecv1.MediaTypeImageLayerGzip
	case oci && c == compressionZstd:
		return imgspecv1.MediaTypeImageLayerZstd
	case oci:
		return imgspecv1.MediaTypeImageLayer
	case c == compressionGzip:
		return manifest.DockerV2Schema2LayerMediaType
	default:
		return manifest.DockerV2SchemaLayerMediaTypeUncompressed
	}
}

// distributableLayerType returns the ordinary layer type with the compression of a foreign
// (non-distributable) one.
func distributableLayerType(mediaType string) string {
	switch mediaType {
	case manifest.DockerV2Schema2ForeignLayerMediaTypeGzip:
		return manifest.DockerV2Schema2LayerMediaType
	case manifest.DockerV2Schema2ForeignLayerMediaType:
		return manifest.DockerV2SchemaLayerMediaTypeUncompressed
	}
	return layerMediaType(imgspecv1.MediaTypeImageLayer, manifest.LayerCompression(mediaType))
}

// foreignUncompressedType returns the uncompressed foreign layer type of a foreign layer's format.
func foreignUncompressedType(mediaType string) string {
	if strings.HasPrefix(mediaType, "application/vnd.docker.") {
		return manifest.DockerV2Schema2ForeignLayerMediaType
	}
	return imgspecv1.MediaTypeImageLayerNonDistributable //nolint:staticcheck // keeps a foreign layer foreign
}

// sourceLayerCompression is the compression of a source layer as its media type says;
// schema1 layers carry no media type and are gzip tarballs.
func sourceLayerCompression(mediaType string) string {
	if mediaType == "" {
		return compressionGzip
	}
	return manifest.LayerCompression(mediaType)
}

// instanceMode is how a multi-platform index is copied.
type instanceMode int

const (
	instancesAll       instanceMode = iota // every instance plus the index
	instancesSubset                        // the instances for Options.Platforms plus a rewritten index
	instancesOne                           // one instance, written as the top-level manifest
	instancesIndexOnly                     // only the index manifest
)

func (m instanceMode) String() string {
	return [...]string{"all instances", "platform subset", "one platform", "index only"}[m]
}

// instancePlanInput is everything the multi-platform decision depends on.
type instancePlanInput struct {
	Mode              MultiArch
	Platforms         int // len(Options.Platforms)
	DestAcceptsIndex  bool
	DestPrefersSingle bool
	// EditsImages: a manifest type or layer compression is asked for (ForceManifestMIMEType,
	// DestinationCompression, DestinationDecompress), which only copied images can get.
	EditsImages bool
}

// planInstances decides how to copy a multi-platform index.
func planInstances(in instancePlanInput) (instanceMode, error) {
	switch {
	case in.Mode == MultiArchIndexOnly:
		if !in.DestAcceptsIndex {
			return 0, errors.New("copying only the index: destination cannot store a multi-platform index")
		}
		if in.Platforms > 0 {
			return 0, errors.New("copying only the index: platforms cannot be selected")
		}
		if in.EditsImages {
			// skopeo ignores a compression here and converts only the index's own type, which
			// leaves an index whose images are not in the asked format.
			return 0, errors.Wrap(types.ErrUsage, "copying only the index: its images are not copied, so a manifest format "+
				"(--format) or layer compression (--dest-compress-format, --dest-decompress) cannot be applied to them; "+
				"copy all platforms, or drop those options")
		}
		return instancesIndexOnly, nil
	case in.Platforms > 0 && (in.Mode == MultiArchSystem || !in.DestAcceptsIndex):
		if in.Platforms > 1 {
			return 0, errors.Errorf("copying %d platforms: destination takes a single image (select one platform)", in.Platforms)
		}
		return instancesOne, nil
	case in.Platforms == 1 && in.Mode == MultiArchAll && in.DestPrefersSingle:
		// A docker-archive keeps the whole index and lists this platform's image in its
		// manifest.json (CommitOptions.Platform), for loaders that take one image.
		return instancesAll, nil
	case in.Platforms > 0:
		return instancesSubset, nil
	case in.Mode == MultiArchAll:
		if !in.DestAcceptsIndex {
			return 0, errors.New("copying all platforms: destination cannot store a multi-platform index")
		}
		return instancesAll, nil
	case in.Mode == MultiArchSystem:
		return instancesOne, nil
	case in.DestAcceptsIndex && !in.DestPrefersSingle:
		return instancesAll, nil
	default:
		return instancesOne, nil
	}
}

// indexPlanInput is everything the index-type decision depends on.
type indexPlanInput struct {
	SrcMIMEType     string
	DestSupported   []string // nil: any
	Force           string   // Options.ForceManifestMIMEType (a single-image type)
	Changed         bool     // the instance list or an instance digest changes
	InstancesOCI    bool     // some written instance is an OCI manifest (counts only when Changed)
	PreserveDigests bool
}

// indexPlan says which index type to write.
type indexPlan struct {
	MIMEType     string
	KeepOriginal bool // write the source bytes unchanged
}

// planIndex decides the index type: the family of a forced manifest type, else an OCI index
// for a Docker list that is rewritten anyway and lists OCI instances, else the source's type
// (so a Docker list whose OCI instances are copied unchanged, as some tools push, stays
// byte-exact); then, when the destination does not accept that, the first index type the
// destination lists.
func planIndex(in indexPlanInput) (indexPlan, error) {
	want := in.SrcMIMEType
	switch {
	case in.Force == imgspecv1.MediaTypeImageManifest:
		want = imgspecv1.MediaTypeImageIndex
	case in.Force == manifest.DockerV2Schema2MediaType:
		want = manifest.DockerV2ListMediaType
	case in.Changed && in.InstancesOCI && want == manifest.DockerV2ListMediaType &&
		(in.DestSupported == nil || slices.Contains(in.DestSupported, imgspecv1.MediaTypeImageIndex)):
		want = imgspecv1.MediaTypeImageIndex
	}
	if in.DestSupported != nil && !slices.Contains(in.DestSupported, want) {
		for _, t := range in.DestSupported {
			if manifest.IsIndexType(t) {
				want = t
				break
			}
		}
	}
	p := indexPlan{MIMEType: want, KeepOriginal: want == in.SrcMIMEType && !in.Changed}
	if in.PreserveDigests && !p.KeepOriginal {
		if want != in.SrcMIMEType {
			return p, errors.Errorf("preserving digests: the index would be converted from %s to %s", in.SrcMIMEType, want)
		}
		return p, errors.New("preserving digests: the index would be rewritten (instances selected or converted)")
	}
	return p, nil
}

func isIndexType(t string) bool { return manifest.IsIndexType(t) }

// indexExactInput is what decides, without reading any instance manifest, whether copying
// every instance of an index certainly writes the index's source bytes unchanged.
type indexExactInput struct {
	Index         indexPlanInput // Changed and InstancesOCI are ignored
	InstanceTypes []string       // the media types the index gives its instances
	Compress      string         // Options.DestinationCompression
	Decompress    bool           // Options.DestinationDecompress
	DestDesired   types.LayerCompression
}

// indexWrittenExact reports whether an index would be written byte-exact. It is
// conservative: any option that might change an instance (a forced type, a compression
// change, an instance type the destination does not list, a nested index whose instances
// are unknown) counts as a change.
func indexWrittenExact(in indexExactInput) bool {
	// A destination wanting compression only gzips Docker-typed uncompressed layers (see
	// planLayer), which a manifest it already stores cannot hold, so it does not block the skip.
	if in.Index.Force != "" || in.Compress != "" || in.Decompress || in.DestDesired == types.Decompress {
		return false
	}
	for _, t := range in.InstanceTypes {
		if isIndexType(t) && in.Index.DestSupported != nil {
			return false // the nested instances' types are unknown until read
		}
		if in.Index.DestSupported != nil && !slices.Contains(in.Index.DestSupported, t) {
			return false
		}
	}
	pin := in.Index
	pin.Changed = false
	p, err := planIndex(pin)
	return err == nil && p.KeepOriginal
}
