package sync

import (
	"context"

	"github.com/distribution/reference"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// planPrune returns the prune items: in every destination repository the sync maps images
// to, the tags no selected image has (this shard's share of them). items is the whole
// selection, before sharding; a repository a source that could not be listed maps to is left
// alone, since what it should hold is unknown.
func (p *Plan) planPrune(ctx context.Context, items []*Item, failed []*Source) []*Item {
	wanted := map[string]map[string]bool{}
	want := func(repo string) map[string]bool {
		if wanted[repo] == nil {
			wanted[repo] = map[string]bool{}
		}
		return wanted[repo]
	}
	for i := range p.opts.Sources {
		if repo, ok := p.mappedRepository(&p.opts.Sources[i]); ok {
			want(repo)
		}
	}
	for _, it := range items {
		if it.Name != "" {
			want(repository(it.Name))[it.Name] = true
		}
	}
	unknown := map[string]bool{}
	for _, src := range failed {
		repo, ok := p.mappedRepository(src)
		if !ok {
			return []*Item{{Destination: p.Destination, Action: ActionSkip, Reason: "not pruned: " + src.Name + " could not be listed"}}
		}
		unknown[repo] = true
	}
	var out []*Item
	for _, repo := range sortedKeys(wanted) {
		if unknown[repo] {
			out = append(out, &Item{Destination: repo, Name: repo, Action: ActionSkip, Reason: "not pruned: a source mapped to it could not be listed"})
			continue
		}
		out = append(out, p.pruneRepository(ctx, repo, wanted[repo])...)
	}
	return out
}

// mappedRepository returns the destination repository of a source naming one registry
// repository (whatever its tags), when it has such a name.
func (p *Plan) mappedRepository(src *Source) (string, bool) {
	ref, err := p.opts.Transports.ParseImageName(src.Name)
	if err != nil || ref.DockerReference() == nil {
		return "", false
	}
	sn := nameOf(types.ListedImage{Name: reference.TagNameOnly(reference.TrimNamed(ref.DockerReference()))})
	if sn == nil {
		return "", false
	}
	n := p.namingFor(src)
	n.suffix = "" // the repository is what matters here, not the tag
	name, err := n.destinationName(sn)
	if err != nil {
		return "", false
	}
	return repository(name), true
}

// pruneRepository lists repo in the destination and returns a prune item for each tag in it
// that is not wanted and belongs to this shard.
func (p *Plan) pruneRepository(ctx context.Context, repo string, wanted map[string]bool) []*Item {
	listed, where, whole, err := p.listRepository(ctx, repo)
	if types.Classify(err) == types.ClassNotFound {
		return nil // a repository (or a store) this sync creates
	}
	if err != nil {
		return []*Item{{Destination: where, Name: repo, Action: ActionFail, Err: errors.Wrap(err, "listing for --prune")}}
	}
	var out []*Item
	for _, li := range listed {
		sn := nameOf(li)
		if sn == nil || sn.tag == "" || (whole && sn.path != repo) {
			continue
		}
		name := repo + ":" + sn.tag
		if wanted[name] || !p.Shard.Owns(name) || relatedTag(sn.tag) {
			continue
		}
		out = append(out, &Item{Destination: types.ImageName(li.Ref), Name: name, DestinationDigest: li.Digest,
			Action: ActionPrune, Reason: "no longer selected at the source", dest: li.Ref})
	}
	return out
}

// listRepository lists the images of repo in the destination: the repository's reference
// when it lists the repository (a registry's tags), else the whole store when the store lists
// itself (layouts, archives, dir trees; listed once), to be filtered by name (whole is true).
// where names what was listed.
func (p *Plan) listRepository(ctx context.Context, repo string) (listed []types.ListedImage, where string, whole bool, err error) {
	if l, ok := p.store.(types.ImageLister); ok {
		if !p.storeListed {
			p.storeImages, p.storeErr = l.ListImages(ctx, p.opts.Copy.DestinationCtx)
			p.storeListed = true
		}
		return p.storeImages, p.Destination, true, p.storeErr
	}
	ref, err := p.store.ImageReference(repo)
	if err != nil {
		return nil, p.Destination, false, err
	}
	lister, ok := ref.(types.ImageLister)
	if !ok {
		return nil, types.ImageName(ref), false, errors.Wrapf(types.ErrUsage, "%s cannot list its images", types.ImageName(ref))
	}
	listed, err = lister.ListImages(ctx, p.opts.Copy.DestinationCtx)
	return listed, types.ImageName(ref), false, err
}

// relatedTag reports whether a tag belongs to the images it is named after: a referrers index
// ("sha256-<hex>") or cosign's signatures, attestations and SBOMs ("sha256-<hex>.sig"), which
// --referrers and --digest-tags copy along. Pruning them would strip the images they sign.
func relatedTag(tag string) bool {
	return manifest.IsFallbackTag(tag) || manifest.IsDigestTag(tag)
}

// prune deletes one tag: with types.TagDeleter, which removes just that name; a store that
// can only delete whole images (types.ImageDeleter) is used only when no other name in the
// store points to the same image, which the plan cannot see, so such stores are refused.
func (p *Plan) prune(ctx context.Context, it *Item) error {
	if td, ok := it.dest.(types.TagDeleter); ok {
		return td.DeleteTag(ctx, p.opts.Copy.DestinationCtx)
	}
	return errors.Wrapf(types.ErrUsage, "pruning %s: the %s transport cannot delete a single tag", it.Destination, it.dest.Transport().Name())
}
