package copy

import (
	"context"
	"slices"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// This file answers, for an image the destination already holds (a sync's up-to-date image),
// whether Image with Options.Referrers or Options.DigestTags would add anything, from
// listings alone: a sync then skips the image, or copies it to write only what is missing.

// RelatedMissing reports what the destination lacks of the referrers and digest tags that
// Image, with opts, would copy along with the image srcRef names, when destRef already holds
// that image unchanged. It reads the image's manifest from the destination only (for the
// instances of an index), and compares, manifest by manifest and recursively, the referrers
// both ends list and the digests both ends give each digest tag: at the source it reads no
// manifest of the image (it opens it with types.LazySourceOpener where it can) and only
// listings, HEADs of digest tags and, with ReferrersTypes, the manifests of referrers the
// destination lacks (to read their type). It writes nothing.
//
// It returns a description of the first missing manifest, or "" when nothing is missing or
// the destination cannot hold referrers and tags at all (Image would only say what it left
// out). An image whose digest the copy changed has no referrers at the destination to
// compare, and none is reported missing.
func RelatedMissing(ctx context.Context, destRef, srcRef types.ImageReference, opts *Options) (_ string, retErr error) {
	if err := types.RequireReferences("comparing referrers", destRef, srcRef); err != nil {
		return "", err
	}
	o := withDefaults(opts)
	if !o.Referrers && !o.DigestTags {
		return "", nil
	}
	dest, err := destRef.NewImageSource(ctx, o.DestinationCtx)
	if err != nil {
		return "", errors.Wrap(err, "opening the destination to compare referrers")
	}
	defer func() { retErr = types.AddCloseError(retErr, dest.Close(), "closing "+types.ImageName(destRef)) }()
	src, err := openLazy(ctx, srcRef, o.SourceCtx)
	if err != nil {
		return "", errors.Wrap(err, "opening the source to compare referrers")
	}
	defer func() { retErr = types.AddCloseError(retErr, src.Close(), "closing "+types.ImageName(srcRef)) }()

	chk := &relatedCheck{opts: o, seen: map[string]bool{}}
	chk.srcLister, _ = src.(types.ReferrersLister)
	chk.srcRelated, _ = src.(types.RelatedSource)
	chk.destLister, _ = dest.(types.ReferrersLister)
	chk.destRelated, _ = dest.(types.RelatedSource)
	if chk.srcRelated == nil || chk.destRelated == nil {
		return "", nil // nothing related to read, or nowhere to keep it
	}
	if o.DigestTags {
		if chk.srcTags, err = listTags(ctx, srcRef, o.SourceCtx); err != nil {
			return "", err
		}
	}
	subjects, err := destSubjects(ctx, dest)
	if err != nil {
		return "", err
	}
	for _, d := range subjects {
		if missing, err := chk.missingOf(ctx, src, dest, d, 0); missing != "" || err != nil {
			return missing, err
		}
	}
	return "", nil
}

// openLazy opens ref as a source without reading the image when the transport can.
func openLazy(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) (types.ImageSource, error) {
	if l, ok := ref.(types.LazySourceOpener); ok {
		return l.NewLazyImageSource(ctx, sys)
	}
	return ref.NewImageSource(ctx, sys)
}

// listTags lists the tags of ref's repository or layout, sorted (none when it cannot).
func listTags(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) ([]string, error) {
	l, ok := ref.(types.TagLister)
	if !ok {
		return nil, nil
	}
	tags, err := l.ListTags(ctx, sys)
	if err != nil {
		return nil, errors.Wrapf(err, "listing tags of %s for digest tags", types.ImageName(ref))
	}
	sort.Strings(tags)
	return tags, nil
}

// destSubjects returns the digests of the destination's manifest and, for an index, of the
// manifests it lists: what a copy attaches referrers and digest tags to.
func destSubjects(ctx context.Context, dest types.ImageSource) ([]digest.Digest, error) {
	b, mt, err := dest.GetManifest(ctx, nil)
	if err != nil {
		return nil, err
	}
	top, err := manifest.Digest(b)
	if err != nil {
		return nil, err
	}
	out := []digest.Digest{top}
	if mt = manifestMIMEType(b, mt); !isIndexType(mt) {
		return out, nil
	}
	idx, err := manifest.IndexFromBlob(b, mt)
	if err != nil {
		return nil, errors.Wrapf(err, "reading index %s at the destination", top)
	}
	for _, inst := range idx.Instances() {
		if !slices.Contains(out, inst.Digest) {
			out = append(out, inst.Digest)
		}
	}
	return out, nil
}

// relatedCheck is the state of one RelatedMissing.
type relatedCheck struct {
	opts                    Options
	srcLister, destLister   types.ReferrersLister
	srcRelated, destRelated types.RelatedSource
	srcTags                 []string
	seen                    map[string]bool
}

// missingOf returns the first referrer or digest tag of d (or of those, recursively) that
// the destination lacks.
func (k *relatedCheck) missingOf(ctx context.Context, src, dest types.ImageSource, d digest.Digest, depth int) (string, error) {
	if depth >= maxRelatedDepth {
		return "", nil
	}
	var next []digest.Digest
	if k.opts.Referrers {
		missing, present, err := k.missingReferrers(ctx, d)
		if missing != "" || err != nil {
			return missing, err
		}
		next = append(next, present...)
	}
	if k.opts.DigestTags {
		missing, tagged, err := k.missingTags(ctx, src, dest, d)
		if missing != "" || err != nil {
			return missing, err
		}
		next = append(next, tagged...)
	}
	for _, n := range next {
		if missing, err := k.missingOf(ctx, src, dest, n, depth+1); missing != "" || err != nil {
			return missing, err
		}
	}
	return "", nil
}

// missingReferrers compares the referrers of subject both ends list: it returns the first
// one the destination lacks (among those ReferrersTypes selects) or, when none is missing,
// those to look into in turn.
func (k *relatedCheck) missingReferrers(ctx context.Context, subject digest.Digest) (string, []digest.Digest, error) {
	if k.srcLister == nil || k.destLister == nil {
		return "", nil, nil
	}
	descs, err := k.srcLister.ListReferrers(ctx, subject)
	if err != nil || len(descs) == 0 {
		return "", nil, err
	}
	have, err := k.destLister.ListReferrers(ctx, subject)
	if err != nil {
		return "", nil, errors.Wrap(err, "at the destination")
	}
	var present []digest.Digest
	for _, desc := range descs {
		if k.seen[desc.Digest.String()] {
			continue
		}
		k.seen[desc.Digest.String()] = true
		if slices.ContainsFunc(have, func(h imgspecv1.Descriptor) bool { return h.Digest == desc.Digest }) {
			present = append(present, desc.Digest)
			continue
		}
		selected, err := k.selected(ctx, desc.Digest, desc.ArtifactType)
		if err != nil || selected {
			return "referrer " + shortDigest(desc.Digest) + " (" + typeText(desc.ArtifactType) + ") of " + shortDigest(subject), nil, err
		}
	}
	return "", present, nil
}

// selected reports whether ReferrersTypes selects the referrer d. The listing's artifactType
// is trusted when it is selected; otherwise the manifest decides, as it does for Image (some
// registries list the config's media type instead).
func (k *relatedCheck) selected(ctx context.Context, d digest.Digest, listed string) (bool, error) {
	if len(k.opts.ReferrersTypes) == 0 || slices.Contains(k.opts.ReferrersTypes, listed) {
		return true, nil
	}
	b, _, err := k.srcRelated.GetRelatedManifest(ctx, d.String())
	if errors.Is(err, types.ErrManifestNotFound) {
		return false, nil // a stale listing: Image skips it too
	}
	if err != nil {
		return false, err
	}
	a, err := manifest.ArtifactOf(b)
	if err != nil {
		return false, err
	}
	return slices.Contains(k.opts.ReferrersTypes, a.ArtifactType), nil
}

// missingTags compares the digest tags of d at both ends: it returns the first one the
// destination lacks or has with another digest or, when none, the digests they name.
func (k *relatedCheck) missingTags(ctx context.Context, src, dest types.ImageSource, d digest.Digest) (string, []digest.Digest, error) {
	prefix := manifest.DigestTagPrefix(d)
	var tagged []digest.Digest
	for _, tag := range k.srcTags {
		if !strings.HasPrefix(tag, prefix) || k.seen["tag:"+tag] {
			continue
		}
		k.seen["tag:"+tag] = true
		want, err := resolveTag(ctx, src, k.srcRelated, tag)
		if errors.Is(err, types.ErrManifestNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return "", nil, err
		}
		got, err := resolveTag(ctx, dest, k.destRelated, tag)
		if errors.Is(err, types.ErrManifestNotFound) || (err == nil && got != want) {
			return "tag " + tag + " (" + shortDigest(want) + ")", nil, nil
		}
		if err != nil {
			return "", nil, errors.Wrap(err, "at the destination")
		}
		tagged = append(tagged, want)
	}
	return "", tagged, nil
}

// resolveTag returns the digest of the manifest tag names in s: a HEAD where s can, else
// the manifest read and hashed (local stores).
func resolveTag(ctx context.Context, s types.ImageSource, rs types.RelatedSource, tag string) (digest.Digest, error) {
	if rd, ok := s.(types.RelatedDigester); ok {
		return rd.RelatedDigest(ctx, tag)
	}
	b, _, err := rs.GetRelatedManifest(ctx, tag)
	if err != nil {
		return "", err
	}
	return manifest.Digest(b)
}
