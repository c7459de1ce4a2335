package manifest

import (
	"maps"

	"github.com/imgcopy/imgcopy/types"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
)

// UpdateOptions are the edits for writing a manifest to a destination.
type UpdateOptions struct {
	// LayerInfos is nil to keep the layers; else one entry per LayerInfos() entry with the
	// new digest and size. A MediaType of "" keeps the layer's type; otherwise its
	// compression (and foreignness) is taken from it and expressed in the target format.
	// URLs and Annotations nil keep the original ones (URLs only while the layer stays
	// foreign). Entries for schema1 empty layers are ignored when converting.
	LayerInfos []types.BlobInfo
	// MIMEType is "" to keep the format; else the target (schema2 <-> OCI, schema1 -> both).
	MIMEType string
	// ConfigInfo is required when converting from schema1 (the synthesized config); for other
	// formats it replaces the config's digest and size when the config was rewritten.
	ConfigInfo *types.BlobInfo
}

// image is the format-neutral content of a single-image manifest.
type image struct {
	source       string // MIME type it came from
	config       types.BlobInfo
	layers       []LayerInfo
	artifactType string
	subject      *imgspecv1.Descriptor
	annotations  map[string]string
	schema1      *Schema1
	oci          *OCI1
}

// Update returns a new Manifest with the edits applied; m is not modified. It fails with
// ErrConversionLoss (wrapped, saying what would be lost) e.g. for zstd layers or non-image
// artifacts to schema2, and with ErrUnsupportedMIMEType for targets it cannot write (indexes,
// schema1 from another format). The result has been re-parsed, so it is valid.
func Update(m Manifest, opts UpdateOptions) (Manifest, error) {
	target := normalizeMIMEType(opts.MIMEType)
	if target == "" {
		target = m.MIMEType()
	}
	if opts.LayerInfos == nil && opts.ConfigInfo == nil && target == m.MIMEType() {
		return m, nil
	}
	img := imageFrom(m)
	if err := img.applyEdits(opts); err != nil {
		return nil, err
	}
	switch target {
	case DockerV2Schema2MediaType:
		return img.toSchema2()
	case imgspecv1.MediaTypeImageManifest:
		return img.toOCI1()
	case DockerV2Schema1MediaType, DockerV2Schema1SignedMediaType:
		return img.toSchema1()
	}
	return nil, errors.Wrapf(ErrUnsupportedMIMEType, "converting a manifest to %q", target)
}

// imageFrom extracts the neutral content of m.
func imageFrom(m Manifest) *image {
	img := &image{source: m.MIMEType(), config: m.ConfigInfo(), layers: m.LayerInfos()}
	switch v := m.(type) {
	case *OCI1:
		img.artifactType = v.ArtifactType
		img.subject = v.Subject
		img.annotations = v.Annotations
		img.oci = v
	case *Schema1:
		img.schema1 = v
	}
	return img
}

// applyEdits merges the layer and config edits of opts into img.
func (img *image) applyEdits(opts UpdateOptions) error {
	if opts.LayerInfos != nil {
		if len(opts.LayerInfos) != len(img.layers) {
			return errors.Errorf("updating manifest: %d layer infos for %d layers", len(opts.LayerInfos), len(img.layers))
		}
		for i, upd := range opts.LayerInfos {
			img.layers[i].BlobInfo = mergeBlobInfo(img.layers[i].BlobInfo, upd)
		}
	}
	if opts.ConfigInfo != nil {
		img.config = mergeBlobInfo(img.config, *opts.ConfigInfo)
	}
	return nil
}

// mergeBlobInfo applies upd to orig following the UpdateOptions.LayerInfos rules.
func mergeBlobInfo(orig, upd types.BlobInfo) types.BlobInfo {
	out := upd
	if out.MediaType == "" {
		out.MediaType = orig.MediaType
	}
	if out.Annotations == nil {
		out.Annotations = orig.Annotations
	}
	if out.URLs == nil && !(isForeign(orig.MediaType) && !isForeign(out.MediaType)) {
		out.URLs = orig.URLs
	}
	return out
}

// isForeign reports whether mediaType is a foreign (non-distributable) layer type.
func isForeign(mediaType string) bool {
	return layerKinds[mediaType].foreign
}

// IsForeignLayer reports whether mediaType is a foreign (non-distributable) layer type:
// Docker's foreign layer types or the deprecated OCI non-distributable ones. Such layers are
// meant to be fetched from the URLs of their descriptor rather than from a registry.
func IsForeignLayer(mediaType string) bool { return isForeign(mediaType) }

// imageLayers returns the layers that exist in a schema2/OCI manifest (schema1 empty layers
// have no place there).
func (img *image) imageLayers() []LayerInfo {
	out := make([]LayerInfo, 0, len(img.layers))
	for _, l := range img.layers {
		if img.schema1 == nil || !l.EmptyLayer {
			out = append(out, l)
		}
	}
	return out
}

// configFor returns the config descriptor for a target format whose image config media type
// is configType, checking that the schema1 conversion was given one.
func (img *image) configFor(configType string) (types.BlobInfo, error) {
	c := img.config
	if img.schema1 != nil {
		if c.Digest == "" {
			return c, errors.Errorf("converting schema1 manifest: ConfigInfo with the synthesized config is required")
		}
		for i, l := range img.imageLayers() {
			if l.Size < 0 {
				return c, errors.Errorf("converting schema1 manifest: size of %s unknown, LayerInfos with sizes are required", layerName(i))
			}
		}
		c.MediaType = configType
	}
	if c.MediaType == DockerV2Schema2ConfigMediaType || c.MediaType == imgspecv1.MediaTypeImageConfig {
		c.MediaType = configType
	}
	return c, nil
}

// logDropped notes metadata a conversion drops because the target cannot hold it and nothing
// depends on it.
func logDropped(what string, n int, target string) {
	if n > 0 {
		logrus.WithFields(logrus.Fields{"what": what, "count": n, "target": target}).Debug("dropping metadata in manifest conversion")
	}
}

// cloneAnnotations copies a map so that results never alias their input.
func cloneAnnotations(a map[string]string) map[string]string {
	if a == nil {
		return nil
	}
	return maps.Clone(a)
}
