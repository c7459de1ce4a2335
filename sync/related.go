package sync

import (
	"context"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// A sync with copy.Options.Referrers or DigestTags carries each image's signatures, SBOMs
// and attestations with it: the tags that hold them are not planned as images of their own,
// and an image that is up to date is copied again (writing only what is missing) when the
// destination lacks one of them.

// travelsWithImage reports whether a listed tag is one the copy of another image carries
// along (copy.Options): a referrers index "sha256-<hex>" with Referrers, a digest tag
// "sha256-<hex>.sig" with DigestTags. Such a tag is not an image of its own to plan, and
// those of images the selection leaves out stay behind. Without the options they are
// ordinary tags, copied as images as skopeo sync does.
func (p *Plan) travelsWithImage(li types.ListedImage) bool {
	n := nameOf(li)
	if n == nil || n.tag == "" {
		return false
	}
	return (p.opts.Copy.Referrers && manifest.IsFallbackTag(n.tag)) || (p.opts.Copy.DigestTags && manifest.IsDigestTag(n.tag))
}

// checkRelated turns an up-to-date image into one to copy when the destination lacks one of
// its referrers or digest tags (Copy.Referrers, Copy.DigestTags), found from listings alone
// (copy.RelatedMissing). The copy then finds the image present and writes only what is
// missing; when the listings cannot be compared, it compares them itself.
func (p *Plan) checkRelated(ctx context.Context, it *Item) {
	o := p.copyOptions(it)
	if !o.Referrers && !o.DigestTags {
		return
	}
	missing, err := copier.RelatedMissing(ctx, it.dest, it.src, &o)
	switch {
	case err != nil:
		it.Action, it.Reason = ActionCopy, "up to date, but its referrers could not be compared: "+err.Error()
	case missing != "":
		it.Action, it.Reason = ActionCopy, "up to date, but the destination lacks "+missing
	}
}
