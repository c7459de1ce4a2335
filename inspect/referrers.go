package inspect

import (
	"context"
	"slices"
	"sort"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// maxReferrersDepth bounds a recursive listing (a signature of an SBOM of an image is 2).
const maxReferrersDepth = 8

// Referrer is one artifact that refers to a manifest, described from its own manifest (not
// from the registry's summary, which some registries get wrong).
type Referrer struct {
	Digest       digest.Digest     `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// Referrers are the artifacts referring to this one (ReferrersOptions.Recursive).
	Referrers []Referrer `json:"referrers,omitempty"`
}

// ReferrersList is the output of `imgcopy referrers`.
type ReferrersList struct {
	// Subject is the digest of the image's top-level manifest.
	Subject   digest.Digest `json:"subject"`
	MediaType string        `json:"mediaType"`
	Referrers []Referrer    `json:"referrers"`
}

// ReferrersOptions are the optional arguments of ListReferrers.
type ReferrersOptions struct {
	// ArtifactTypes, when not empty, lists only artifacts of these types (and, recursively,
	// what refers to them).
	ArtifactTypes []string
	// Recursive also lists what refers to each artifact, and so on.
	Recursive bool
}

// ListReferrers lists the artifacts referring to the image ref names (to its top-level
// manifest, an index for a multi-platform image). The transport must be able to hold
// referrers (a registry, an OCI layout or archive); others are an error wrapping
// types.ErrUsage.
func ListReferrers(ctx context.Context, ref types.ImageReference, sys *types.SystemContext, opts ReferrersOptions) (res *ReferrersList, retErr error) {
	if err := types.RequireReferences("listing referrers", ref); err != nil {
		return nil, err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := src.Close(); cerr != nil && retErr == nil {
			retErr = errors.Wrapf(cerr, "closing %s", types.ImageName(ref))
		}
	}()
	lister, ok := src.(types.ReferrersLister)
	related, ok2 := src.(types.RelatedSource)
	if !ok || !ok2 {
		return nil, errors.Wrapf(types.ErrUsage, "%s: the %s transport cannot hold referrers", types.ImageName(ref), ref.Transport().Name())
	}
	b, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, errors.Wrapf(err, "reading manifest of %s", types.ImageName(ref))
	}
	d, err := manifest.Digest(b)
	if err != nil {
		return nil, errors.Wrapf(err, "computing the digest of %s", types.ImageName(ref))
	}
	if mt == "" {
		mt = manifest.GuessMIMEType(b)
	}
	l := referrerLister{lister: lister, src: related, opts: opts, seen: map[digest.Digest]bool{d: true}}
	refs, err := l.list(ctx, d, 0)
	if err != nil {
		return nil, errors.Wrapf(err, "listing referrers of %s", types.ImageName(ref))
	}
	return &ReferrersList{Subject: d, MediaType: mt, Referrers: refs}, nil
}

// referrerLister walks the referrers of one source.
type referrerLister struct {
	lister types.ReferrersLister
	src    types.RelatedSource
	opts   ReferrersOptions
	seen   map[digest.Digest]bool
}

// list returns the referrers of subject, sorted by type and digest, each read from its own
// manifest, and theirs when recursive.
func (l *referrerLister) list(ctx context.Context, subject digest.Digest, depth int) ([]Referrer, error) {
	descs, err := l.lister.ListReferrers(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := []Referrer{}
	for _, desc := range descs {
		if l.seen[desc.Digest] {
			continue
		}
		l.seen[desc.Digest] = true
		r, ok, err := l.describe(ctx, subject, desc.Digest)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if l.opts.Recursive && depth+1 < maxReferrersDepth {
			if r.Referrers, err = l.list(ctx, r.Digest, depth+1); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ArtifactType != out[j].ArtifactType {
			return out[i].ArtifactType < out[j].ArtifactType
		}
		return out[i].Digest < out[j].Digest
	})
	return out, nil
}

// describe reads one referrer's manifest; ok is false when it is filtered out or does not
// actually refer to subject.
func (l *referrerLister) describe(ctx context.Context, subject, d digest.Digest) (Referrer, bool, error) {
	b, mt, err := l.src.GetRelatedManifest(ctx, d.String())
	if err != nil {
		return Referrer{}, false, err
	}
	if err := manifest.CheckDigest(b, d, -1); err != nil {
		return Referrer{}, false, errors.Wrapf(err, "reading manifest %s", d)
	}
	a, err := manifest.ArtifactOf(b)
	if err != nil {
		return Referrer{}, false, errors.Wrapf(err, "reading manifest %s", d)
	}
	if a.Subject == nil || a.Subject.Digest != subject {
		return Referrer{}, false, nil
	}
	if len(l.opts.ArtifactTypes) > 0 && !slices.Contains(l.opts.ArtifactTypes, a.ArtifactType) {
		return Referrer{}, false, nil
	}
	if mt == "" {
		mt = manifest.GuessMIMEType(b)
	}
	return Referrer{Digest: d, MediaType: mt, ArtifactType: a.ArtifactType, Size: int64(len(b)), Annotations: a.Annotations}, true, nil
}
