package manifest

import (
	"strings"

	"github.com/imgcopy/imgcopy/types"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// dockerLayerTypes and ociLayerTypes express a layer kind in each format.
var (
	dockerLayerTypes = map[layerKind]string{
		{compressionGzip, false}: DockerV2Schema2LayerMediaType,
		{compressionNone, false}: DockerV2SchemaLayerMediaTypeUncompressed,
		{compressionGzip, true}:  DockerV2Schema2ForeignLayerMediaTypeGzip,
		{compressionNone, true}:  DockerV2Schema2ForeignLayerMediaType,
	}
	ociLayerTypes = map[layerKind]string{
		{compressionGzip, false}: imgspecv1.MediaTypeImageLayerGzip,
		{compressionZstd, false}: imgspecv1.MediaTypeImageLayerZstd,
		{compressionNone, false}: imgspecv1.MediaTypeImageLayer,
		{compressionGzip, true}:  imgspecv1.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // keeps foreign layers foreign
		{compressionZstd, true}:  imgspecv1.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck // keeps foreign layers foreign
		{compressionNone, true}:  imgspecv1.MediaTypeImageLayerNonDistributable,     //nolint:staticcheck // keeps foreign layers foreign
	}
)

// layerTypeFor expresses a layer media type in the format whose table is given; a type the
// table cannot express is kept when the layer already came from that format (keepUnknown).
func layerTypeFor(i int, mediaType string, table map[layerKind]string, keepUnknown bool, format string) (string, error) {
	for _, t := range table {
		if t == mediaType {
			return mediaType, nil
		}
	}
	k, known := layerKinds[mediaType]
	if !known {
		if keepUnknown {
			return mediaType, nil
		}
		return "", errors.Wrapf(ErrConversionLoss, "%s media type %q has no %s equivalent", layerName(i), mediaType, format)
	}
	t, ok := table[k]
	if !ok {
		return "", errors.Wrapf(ErrConversionLoss, "%s is %s-compressed, which %s cannot express", layerName(i), k.compression, format)
	}
	return t, nil
}

// toSchema2 builds a Docker schema2 manifest from img.
func (img *image) toSchema2() (Manifest, error) {
	if err := img.checkSchema2Expressible(); err != nil {
		return nil, err
	}
	config, err := img.configFor(DockerV2Schema2ConfigMediaType)
	if err != nil {
		return nil, err
	}
	if !isSchema2ConfigType(config.MediaType, img.source) {
		return nil, errors.Wrapf(ErrConversionLoss, "config media type %q is not an image config; schema2 cannot hold artifacts", config.MediaType)
	}
	m := &Schema2{SchemaVersion: 2, MediaType: DockerV2Schema2MediaType, Config: schema2Descriptor(config)}
	annotated := countAnnotated(config)
	for i, l := range img.imageLayers() {
		mt, err := layerTypeFor(i, l.MediaType, dockerLayerTypes, img.source == DockerV2Schema2MediaType, "schema2")
		if err != nil {
			return nil, err
		}
		l.MediaType = mt
		annotated += countAnnotated(l.BlobInfo)
		m.Layers = append(m.Layers, schema2Descriptor(l.BlobInfo))
	}
	logDropped("descriptor annotations", annotated, DockerV2Schema2MediaType)
	logDropped("manifest annotations", len(img.annotations), DockerV2Schema2MediaType)
	return reparse(m, DockerV2Schema2MediaType)
}

// isSchema2ConfigType reports whether a schema2 manifest may carry config type mt: the image
// config, another Docker type (plugins), or whatever a schema2 source already had.
func isSchema2ConfigType(mt, source string) bool {
	return mt == DockerV2Schema2ConfigMediaType || strings.HasPrefix(mt, "application/vnd.docker.") ||
		source == DockerV2Schema2MediaType
}

// Schema2Expressible returns an error wrapping ErrConversionLoss when m has OCI fields a
// Docker schema2 manifest has no place for (artifactType, subject), as converting m to schema2
// would: a caller can refuse such a conversion before copying anything.
func Schema2Expressible(m Manifest) error {
	return imageFrom(m).checkSchema2Expressible()
}

// checkSchema2Expressible fails for OCI features schema2 has no field for.
func (img *image) checkSchema2Expressible() error {
	if img.artifactType != "" {
		return errors.Wrapf(ErrConversionLoss, "artifactType %q cannot be expressed in schema2", img.artifactType)
	}
	if img.subject != nil {
		return errors.Wrapf(ErrConversionLoss, "subject %s cannot be expressed in schema2", img.subject.Digest)
	}
	return nil
}

// countAnnotated returns 1 when b has annotations (which schema2 cannot hold).
func countAnnotated(b types.BlobInfo) int {
	if len(b.Annotations) > 0 {
		return 1
	}
	return 0
}

// toOCI1 builds an OCI image manifest from img, keeping OCI-only fields of an OCI source.
func (img *image) toOCI1() (Manifest, error) {
	config, err := img.configFor(imgspecv1.MediaTypeImageConfig)
	if err != nil {
		return nil, err
	}
	m := &OCI1{}
	m.SchemaVersion = 2
	m.MediaType = imgspecv1.MediaTypeImageManifest
	m.ArtifactType = img.artifactType
	m.Subject = img.subject
	m.Annotations = cloneAnnotations(img.annotations)
	m.Config = img.ociDescriptorAt(-1, config)
	m.Layers = []imgspecv1.Descriptor{}
	for i, l := range img.imageLayers() {
		mt, err := layerTypeFor(i, l.MediaType, ociLayerTypes, true, "OCI")
		if err != nil {
			return nil, err
		}
		l.MediaType = mt
		m.Layers = append(m.Layers, img.ociDescriptorAt(i, l.BlobInfo))
	}
	return reparse(m, imgspecv1.MediaTypeImageManifest)
}

// ociDescriptorAt converts b for an OCI result; when the source was OCI and the blob at that
// position (-1: config) is unchanged, the OCI-only fields (data, artifactType) are kept.
func (img *image) ociDescriptorAt(i int, b types.BlobInfo) imgspecv1.Descriptor {
	d := ociDescriptor(b)
	if img.oci == nil {
		return d
	}
	orig := img.oci.Config
	if i >= 0 {
		orig = img.oci.Layers[i]
	}
	if orig.Digest == d.Digest && orig.Size == d.Size {
		d.Data = orig.Data
		d.ArtifactType = orig.ArtifactType
	}
	return d
}

// toSchema1 applies layer edits to a schema1 manifest; other formats cannot become schema1.
// The result is unsigned (its signatures would no longer verify) and drops repeated entries.
func (img *image) toSchema1() (Manifest, error) {
	if img.schema1 == nil {
		return nil, errors.Wrapf(ErrUnsupportedMIMEType, "converting %s to schema1 is not supported", img.source)
	}
	if img.config.Digest != "" {
		return nil, errors.Wrap(ErrConversionLoss, "schema1 has no config blob to update")
	}
	entries, err := img.schema1.entries()
	if err != nil {
		return nil, err
	}
	src := img.schema1
	m := &Schema1{SchemaVersion: 1, Name: src.Name, Tag: src.Tag, Architecture: src.Architecture}
	for i := range entries {
		l := img.layers[len(entries)-1-i] // img.layers is base first, entries newest first
		if LayerCompression(l.MediaType) != compressionGzip {
			return nil, errors.Wrapf(ErrConversionLoss, "schema1 layers must be gzip, %s is %q", layerName(len(entries)-1-i), l.MediaType)
		}
		m.FSLayers = append(m.FSLayers, Schema1FSLayer{BlobSum: l.Digest})
		m.History = append(m.History, src.History[entries[i].index])
	}
	return reparse(m, DockerV2Schema1MediaType)
}

// reparse serializes a built manifest and parses it back, so that every result of Update is
// validated by the same code as input and serializes to stable bytes.
func reparse(m Manifest, mimeType string) (Manifest, error) {
	b, err := m.Serialize()
	if err != nil {
		return nil, errors.Wrapf(err, "serializing %s manifest", mimeType)
	}
	out, err := FromBlob(b, mimeType)
	if err != nil {
		return nil, errors.Wrapf(err, "validating updated %s manifest", mimeType)
	}
	return out, nil
}
