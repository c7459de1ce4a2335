package integrity

import (
	"context"
	"slices"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// This file checks what travels with an image (see types/referrers.go): the artifacts that
// refer to it (signatures, SBOMs, attestations) and the manifests its digest tags name
// (cosign's sha256-<hex>.sig, .att, .sbom), then what refers to those in turn. A bundle that
// carries signatures is only intact if they are.

// relatedTags lists, once per check, the tags of the store or repository the check reads,
// where digest tags are found; nil when the reference cannot list tags.
type relatedTags struct {
	once sync.Once
	ref  types.ImageReference
	sys  *types.SystemContext
	tags []string
}

// digestTags returns the tags "<alg>-<hex>.*" naming d.
func (t *relatedTags) digestTags(ctx context.Context, d digest.Digest) []string {
	t.once.Do(func() {
		lister, ok := t.ref.(types.TagLister)
		if !ok {
			return
		}
		tags, err := lister.ListTags(ctx, t.sys)
		if err != nil {
			logrus.WithFields(logrus.Fields{"ref": types.ImageName(t.ref), "error": err}).Debug("cannot list tags; digest tags not checked")
			return
		}
		t.tags = tags
	})
	prefix := manifest.DigestTagPrefix(d)
	var res []string
	for _, tag := range t.tags {
		if strings.HasPrefix(tag, prefix) {
			res = append(res, tag)
		}
	}
	return res
}

// subjects returns the digests that related manifests may name for the manifest b (digest
// d): d itself and, for an index, each instance.
func subjects(b []byte, mimeType string, d digest.Digest) []digest.Digest {
	res := []digest.Digest{d}
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(b)
	}
	if !manifest.IsIndexType(mimeType) {
		return res
	}
	idx, err := manifest.IndexFromBlob(b, mimeType)
	if err != nil {
		return res // reported by the index check already
	}
	for _, inst := range idx.Instances() {
		if !slices.Contains(res, inst.Digest) {
			res = append(res, inst.Digest)
		}
	}
	return res
}

// related checks the referrers and digest tags of each manifest in subs, when src can read
// them (types.ReferrersLister, types.RelatedSource), and recursively what relates to those.
func (c *checker) related(ctx context.Context, src types.ImageSource, name string, subs []digest.Digest, depth int) error {
	rs, ok := src.(types.RelatedSource)
	if !ok || depth >= maxDepth {
		return nil
	}
	lister, _ := src.(types.ReferrersLister)
	for _, s := range subs {
		type found struct {
			ref  string // a digest or a tag
			size int64  // -1 for a tag
		}
		var refs []found
		if lister != nil {
			descs, err := lister.ListReferrers(ctx, s)
			if err != nil {
				if err := c.fail(ctx, name, s, errors.Wrapf(err, "listing the referrers of %s", s)); err != nil {
					return err
				}
			}
			for _, desc := range descs {
				if !c.seenAlready(desc.Digest) {
					refs = append(refs, found{desc.Digest.String(), desc.Size})
				}
			}
		}
		for _, tag := range c.tags.digestTags(ctx, s) {
			refs = append(refs, found{tag, -1})
		}
		for _, f := range refs {
			if err := c.relatedManifest(ctx, src, rs, name, f.ref, f.size, s, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// relatedManifest checks the related manifest ref (a digest with its size, or a tag) of
// subject, everything it references, and what relates to it.
func (c *checker) relatedManifest(ctx context.Context, src types.ImageSource, rs types.RelatedSource, name, ref string, size int64, subject digest.Digest, depth int) error {
	what := "referrer " + ref
	if size < 0 {
		what = "digest tag " + ref
	}
	b, mimeType, err := rs.GetRelatedManifest(ctx, ref)
	if err != nil {
		return c.fail(ctx, name, digest.Digest(ref), errors.Wrapf(err, "%s of %s", what, subject))
	}
	d, err := manifest.Digest(b)
	if err != nil {
		return c.fail(ctx, name, subject, errors.Wrapf(err, "%s of %s", what, subject))
	}
	if size >= 0 {
		if err := manifest.CheckDigest(b, digest.Digest(ref), size); err != nil {
			c.problem(name, digest.Digest(ref), errors.Wrapf(err, "%s of %s", what, subject))
			return nil
		}
	}
	if !c.first(d) {
		return nil
	}
	c.count(func(r *Report) { r.Related++ })
	if err := c.manifest(ctx, src, name, b, mimeType, d, 0); err != nil {
		return err
	}
	return c.related(ctx, src, name, subjects(b, mimeType, d), depth+1)
}

// seenAlready reports whether d was checked (or is being checked) already, without marking it.
func (c *checker) seenAlready(d digest.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[d]
}
