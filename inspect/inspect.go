package inspect

import (
	"context"
	"encoding/json"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// Output is the summary printed by `imgcopy inspect`, with skopeo's field names.
type Output struct {
	Name          string `json:",omitempty"`
	Tag           string `json:",omitempty"` // a schema1 manifest's tag, as skopeo shows it
	Digest        digest.Digest
	RepoTags      []string
	Created       *time.Time
	DockerVersion string
	Labels        map[string]string
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	Layers        []digest.Digest
	LayersData    []LayerData
	Env           []string
}

// LayerData describes one layer as the manifest lists it.
type LayerData struct {
	MIMEType    string
	Digest      digest.Digest
	Size        int64
	Annotations map[string]string
}

// Image is the manifest and config of one image as read from its source.
type Image struct {
	// Manifest, MIMEType and Digest describe the top-level manifest (possibly an index).
	Manifest []byte
	MIMEType string
	Digest   digest.Digest
	// Instance is the single-image manifest: the top-level one, or the instance chosen from
	// an index for the running platform (with the SystemContext's overrides).
	Instance manifest.Manifest
	// InstanceDigest is the digest of Instance's manifest.
	InstanceDigest digest.Digest
	// Config is the image config's bytes as stored; for schema1 images, which have no config
	// blob, it is the newest history entry's v1 image JSON.
	Config []byte
}

// Options are the optional arguments of Inspect.
type Options struct {
	// NoTags skips listing the repository's tags (RepoTags stays empty).
	NoTags bool
}

// RawManifest returns the top-level manifest exactly as stored, with its MIME type.
func RawManifest(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) (b []byte, mimeType string, err error) {
	if err := types.RequireReferences("reading a manifest", ref); err != nil {
		return nil, "", err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, "", errors.Wrapf(err, "opening %s", types.ImageName(ref))
	}
	defer func() { err = types.AddCloseError(err, src.Close(), "closing "+types.ImageName(ref)) }()
	b, mimeType, err = src.GetManifest(ctx, nil)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading manifest of %s", types.ImageName(ref))
	}
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(b)
	}
	return b, mimeType, nil
}

// Read reads the top-level manifest, chooses the instance for the platform when it is an
// index, and reads that image's config (verifying its digest).
func Read(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) (img *Image, err error) {
	if err := types.RequireReferences("reading an image", ref); err != nil {
		return nil, err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(ref))
	}
	defer func() { err = types.AddCloseError(err, src.Close(), "closing "+types.ImageName(ref)) }()
	img = &Image{}
	if img.Manifest, img.MIMEType, err = src.GetManifest(ctx, nil); err != nil {
		return nil, errors.Wrapf(err, "reading manifest of %s", types.ImageName(ref))
	}
	if img.MIMEType == "" {
		img.MIMEType = manifest.GuessMIMEType(img.Manifest)
	}
	if img.Digest, err = manifest.Digest(img.Manifest); err != nil {
		return nil, errors.Wrapf(err, "computing manifest digest of %s", types.ImageName(ref))
	}
	instBytes, instType, instDigest := img.Manifest, img.MIMEType, img.Digest
	if manifest.IsIndexType(img.MIMEType) {
		if instBytes, instType, instDigest, err = chooseInstance(ctx, src, img, sys); err != nil {
			return nil, err
		}
	}
	img.InstanceDigest = instDigest
	if img.Instance, err = manifest.FromBlob(instBytes, instType); err != nil {
		return nil, errors.Wrapf(err, "parsing manifest %s of %s", instDigest, types.ImageName(ref))
	}
	if img.Config, err = readConfig(ctx, src, img.Instance); err != nil {
		return nil, err
	}
	return img, nil
}

// chooseInstance picks the index entry for the system platform and reads its manifest.
func chooseInstance(ctx context.Context, src types.ImageSource, img *Image, sys *types.SystemContext) ([]byte, string, digest.Digest, error) {
	name := types.ImageName(src.Reference())
	idx, err := manifest.IndexFromBlob(img.Manifest, img.MIMEType)
	if err != nil {
		return nil, "", "", errors.Wrapf(err, "parsing index of %s", name)
	}
	inst, err := manifest.ResolveInstance(ctx, idx, manifest.SystemPlatform(sys), func(ctx context.Context, d digest.Digest) ([]byte, string, error) {
		b, mimeType, err := src.GetManifest(ctx, &d)
		if err != nil {
			return nil, "", errors.Wrapf(err, "reading manifest %s of %s", d, name)
		}
		return b, mimeType, nil
	})
	if err != nil {
		return nil, "", "", errors.Wrapf(err, "choosing an image from %s", name)
	}
	return inst.Manifest, inst.MIMEType, inst.Digest, nil
}

// readConfig reads and verifies the config blob; schema1 images get their v1 image JSON.
func readConfig(ctx context.Context, src types.ImageSource, m manifest.Manifest) ([]byte, error) {
	if s1, ok := m.(*manifest.Schema1); ok {
		if len(s1.History) == 0 {
			return nil, nil
		}
		return []byte(s1.History[0].V1Compatibility), nil
	}
	info := m.ConfigInfo()
	if info.Digest == "" {
		return nil, nil
	}
	rc, size, err := src.GetBlob(ctx, info, types.GetBlobOptions{})
	if err != nil {
		return nil, errors.Wrapf(err, "fetching config %s from %s", info.Digest, types.ImageName(src.Reference()))
	}
	defer rc.Close()
	if info.Size < 0 {
		info.Size = size
	}
	vr, err := verify.NewReader(rc, info.Digest, info.Size)
	if err != nil {
		return nil, err
	}
	b, err := iolimits.ReadAtMost(vr, iolimits.MaxConfigBodySize)
	if err != nil {
		return nil, errors.Wrapf(err, "reading config %s from %s", info.Digest, types.ImageName(src.Reference()))
	}
	return b, nil
}

// imageConfig holds the config fields the summary shows; Docker and OCI configs and v1 image
// JSON share these names.
type imageConfig struct {
	Created       *time.Time `json:"created"`
	DockerVersion string     `json:"docker_version"`
	Architecture  string     `json:"architecture"`
	Variant       string     `json:"variant"`
	OS            string     `json:"os"`
	Config        struct {
		Env    []string          `json:"Env"`
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

// Summary builds the skopeo-like output for img; tags become RepoTags.
func (img *Image) Summary(ref types.ImageReference, tags []string) (*Output, error) {
	out := &Output{Digest: img.Digest, RepoTags: tags, Layers: []digest.Digest{}, LayersData: []LayerData{}}
	if out.RepoTags == nil {
		out.RepoTags = []string{}
	}
	if named := ref.DockerReference(); named != nil {
		out.Name = reference.TrimNamed(named).String()
	}
	if len(img.Config) > 0 {
		var c imageConfig
		if err := json.Unmarshal(img.Config, &c); err != nil {
			return nil, errors.Wrapf(err, "parsing config of %s", types.ImageName(ref))
		}
		out.Created, out.DockerVersion = c.Created, c.DockerVersion
		out.Architecture, out.Variant, out.Os = c.Architecture, c.Variant, c.OS
		out.Env, out.Labels = c.Config.Env, c.Config.Labels
	}
	if s1, ok := img.Instance.(*manifest.Schema1); ok {
		out.Tag = s1.Tag
		if out.Architecture == "" {
			out.Architecture = s1.Architecture
		}
	}
	for _, l := range img.Instance.LayerInfos() {
		if l.EmptyLayer {
			continue
		}
		out.Layers = append(out.Layers, l.Digest)
		out.LayersData = append(out.LayersData, LayerData{MIMEType: l.MediaType, Digest: l.Digest, Size: l.Size, Annotations: l.Annotations})
	}
	return out, nil
}

// Inspect reads ref and returns its summary. RepoTags lists the tags of the repository (or
// layout or archive) when the reference implements types.TagLister and opts.NoTags is false;
// a registry that refuses the tag list (denied or not found) leaves it empty, with a warning.
func Inspect(ctx context.Context, ref types.ImageReference, sys *types.SystemContext, opts Options) (*Output, error) {
	img, err := Read(ctx, ref, sys)
	if err != nil {
		return nil, err
	}
	var tags []string
	if lister, ok := ref.(types.TagLister); ok && !opts.NoTags {
		if tags, err = lister.ListTags(ctx, sys); err != nil {
			// Some registries refuse the tag list to accounts that may pull (ECR without
			// ecr:ListImages answers DENIED) or lack the endpoint (404): the image itself
			// was read, so as skopeo does, say so and go on without RepoTags.
			if c := types.Classify(err); ref.Transport().Name() != "docker" || (c != types.ClassAuth && c != types.ClassNotFound) {
				return nil, errors.Wrapf(err, "listing tags of %s", types.ImageName(ref))
			}
			logrus.WithField("error", err.Error()).Warnf("the registry does not list the tags of %s; RepoTags left empty", types.ImageName(ref))
			tags = nil
		}
	}
	return img.Summary(ref, tags)
}
