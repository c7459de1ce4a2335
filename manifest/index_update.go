package manifest

import (
	"slices"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// IndexUpdateOptions are the edits for writing an index to a destination.
type IndexUpdateOptions struct {
	// Instances is nil to keep the entries; else the new list (a subset and/or entries with
	// updated digests, sizes and media types), written in this order.
	Instances []IndexInstance
	// MIMEType is "" to keep the format; else the target (Docker list <-> OCI index).
	MIMEType string
}

// UpdateIndex returns a new Index with the edits applied; idx is not modified. Converting to a
// Docker list fails with ErrConversionLoss for what a list cannot express: an index-level
// artifactType or subject, entries that are artifacts or nested indexes, or entries without
// a platform. Annotations are dropped (they carry no meaning a consumer of a list relies on).
func UpdateIndex(idx Index, opts IndexUpdateOptions) (Index, error) {
	target := normalizeMIMEType(opts.MIMEType)
	if target == "" {
		target = idx.MIMEType()
	}
	if opts.Instances == nil && target == idx.MIMEType() {
		return idx, nil
	}
	instances := opts.Instances
	if instances == nil {
		instances = idx.Instances()
	}
	var src *OCI1Index
	if v, ok := idx.(*OCI1Index); ok {
		src = v
	}
	switch target {
	case DockerV2ListMediaType:
		return toSchema2List(src, instances, listFeatures(idx))
	case imgspecv1.MediaTypeImageIndex:
		return toOCI1Index(src, instances)
	}
	return nil, errors.Wrapf(ErrUnsupportedMIMEType, "converting an index to %q", target)
}

// listFeatures returns the (deprecated, OCI-less) platform features of a Docker list's
// entries by digest, so that rewriting a list keeps them for unchanged instances.
func listFeatures(idx Index) map[digest.Digest][]string {
	l, ok := idx.(*Schema2List)
	if !ok {
		return nil
	}
	out := map[digest.Digest][]string{}
	for _, d := range l.Manifests {
		if d.Platform.Features != nil {
			out[d.Digest] = d.Platform.Features
		}
	}
	return out
}

// toSchema2List builds a Docker manifest list; src is the OCI source index or nil, features
// the platform features to keep by digest.
func toSchema2List(src *OCI1Index, instances []IndexInstance, features map[digest.Digest][]string) (Index, error) {
	if src != nil && src.ArtifactType != "" {
		return nil, errors.Wrapf(ErrConversionLoss, "index artifactType %q cannot be expressed in a Docker manifest list", src.ArtifactType)
	}
	if src != nil && src.Subject != nil {
		return nil, errors.Wrapf(ErrConversionLoss, "index subject %s cannot be expressed in a Docker manifest list", src.Subject.Digest)
	}
	l := &Schema2List{SchemaVersion: 2, MediaType: DockerV2ListMediaType, Manifests: []Schema2ManifestDescriptor{}}
	for i, inst := range instances {
		d, err := schema2ListEntry(i, inst)
		if err != nil {
			return nil, err
		}
		d.Platform.Features = slices.Clone(features[inst.Digest])
		l.Manifests = append(l.Manifests, d)
	}
	return reparseIndex(l, DockerV2ListMediaType)
}

// schema2ListEntry converts one instance for a Docker manifest list.
func schema2ListEntry(i int, inst IndexInstance) (Schema2ManifestDescriptor, error) {
	switch {
	case inst.ArtifactType != "" && !isImageConfigType(inst.ArtifactType):
		return Schema2ManifestDescriptor{}, errors.Wrapf(ErrConversionLoss,
			"%s is an artifact (%s), which a Docker manifest list cannot express", instanceName(i), inst.ArtifactType)
	case IsIndexType(inst.MediaType):
		return Schema2ManifestDescriptor{}, errors.Wrapf(ErrConversionLoss,
			"%s is a nested index, which a Docker manifest list cannot express", instanceName(i))
	case inst.Platform == nil:
		return Schema2ManifestDescriptor{}, errors.Wrapf(ErrConversionLoss,
			"%s has no platform, which every Docker manifest list entry needs", instanceName(i))
	}
	p := inst.Platform
	return Schema2ManifestDescriptor{
		Schema2Descriptor: schema2Descriptor(inst.BlobInfo),
		Platform: Schema2PlatformSpec{Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion,
			OSFeatures: slices.Clone(p.OSFeatures), Variant: p.Variant},
	}, nil
}

// isImageConfigType reports whether an index entry's artifactType names an image config:
// go-containerregistry (`crane index append`) sets it to the config media type of ordinary
// images, so such an entry is an image, which a Docker list can list (skopeo converts it).
func isImageConfigType(t string) bool {
	return t == imgspecv1.MediaTypeImageConfig || t == DockerV2Schema2ConfigMediaType
}

// toOCI1Index builds an OCI index, keeping the index-level fields of an OCI source.
func toOCI1Index(src *OCI1Index, instances []IndexInstance) (Index, error) {
	idx := &OCI1Index{}
	if src != nil {
		idx.ArtifactType = src.ArtifactType
		idx.Subject = src.Subject
		idx.Annotations = cloneAnnotations(src.Annotations)
	}
	idx.SchemaVersion = 2
	idx.MediaType = imgspecv1.MediaTypeImageIndex
	idx.Manifests = []imgspecv1.Descriptor{}
	for _, inst := range instances {
		d := ociDescriptor(inst.BlobInfo)
		d.ArtifactType = inst.ArtifactType
		if inst.Platform != nil {
			p := *inst.Platform
			p.OSFeatures = slices.Clone(p.OSFeatures)
			d.Platform = &p
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	return reparseIndex(idx, imgspecv1.MediaTypeImageIndex)
}

// reparseIndex serializes a built index and parses it back (see reparse).
func reparseIndex(idx Index, mimeType string) (Index, error) {
	b, err := idx.Serialize()
	if err != nil {
		return nil, errors.Wrapf(err, "serializing %s index", mimeType)
	}
	out, err := IndexFromBlob(b, mimeType)
	if err != nil {
		return nil, errors.Wrapf(err, "validating updated %s index", mimeType)
	}
	return out, nil
}
