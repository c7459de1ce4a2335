package sync

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"golang.org/x/sync/errgroup"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/types"
)

// planParallel bounds the listings and HEAD requests a plan makes at once (the registries'
// own bound, Options.RequestsPerRegistry, applies as well).
const planParallel = 16

// Plan is what a sync will do: every selected image of this shard with its action, then the
// tags to prune. Run carries it out.
type Plan struct {
	// Destination is the destination store as given.
	Destination string
	Shard       Shard
	// Items lists the images in source order (tags sorted within a repository), then the tags
	// to prune.
	Items []*Item

	opts  Options
	store types.StoreReference

	// The destination store's images, listed once for --prune (stores that list themselves).
	storeListed bool
	storeImages []types.ListedImage
	storeErr    error

	// onTurnWait, set by tests, is called when Run holds an image back for another copy of
	// the same manifest into the same repository (runner.takeTurn).
	onTurnWait func(*Item)
}

// Plan lists the sources, names each image in the destination, keeps this shard's share and
// finds out, with HEAD requests only, which images the destination already has. A source that
// cannot be listed, a literal tag that does not exist and a name two sources both claim give
// fail items, not an error: the error return is for options that cannot work at all.
func NewPlan(ctx context.Context, opts Options) (*Plan, error) {
	opts, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	store, err := opts.Transports.ParseStoreName(opts.Destination)
	if err != nil {
		return nil, err
	}
	p := &Plan{Destination: opts.Destination, Shard: opts.Shard, opts: opts, store: store}
	items, failed := p.expand(ctx)
	markConflicts(items)
	var mine []*Item
	for _, it := range items {
		if it.Name == "" || p.Shard.Owns(it.Name) {
			mine = append(mine, it)
		}
	}
	if err := p.resolve(ctx, mine); err != nil {
		return nil, err
	}
	p.Items = mine
	if opts.Prune {
		p.Items = append(p.Items, p.planPrune(ctx, items, failed)...)
	}
	return p, nil
}

// withDefaults validates opts and fills in defaults; the limiter and the cache are installed
// once here, so that every copy of the sync shares them.
func withDefaults(o Options) (Options, error) {
	if o.Transports == nil {
		return o, errors.Wrap(types.ErrUsage, "sync: no transports")
	}
	if len(o.Sources) == 0 {
		return o, errors.Wrap(types.ErrUsage, "sync: no sources")
	}
	if o.ImageParallel <= 0 {
		o.ImageParallel = DefaultImageParallel
	}
	if o.Copy.BlobInfoCache == nil {
		o.Copy.BlobInfoCache = memory.New()
	}
	// Run flushes the cache once after the copies; storing it after each image was 15% of a
	// sync of 2,000 small images into a layout.
	o.Copy.DeferCacheFlush = true
	if o.RateLimitMin > 0 || o.RequestsPerRegistry > 0 {
		lim := newRegistryLimiter(o.RequestsPerRegistry, o.RateLimitMin)
		o.Copy.SourceCtx = withLimiter(o.Copy.SourceCtx, lim)
		o.Copy.DestinationCtx = withLimiter(o.Copy.DestinationCtx, lim)
		sources := make([]Source, len(o.Sources))
		for i, s := range o.Sources {
			if s.SystemContext != nil {
				s.SystemContext = withLimiter(s.SystemContext, lim)
			}
			sources[i] = s
		}
		o.Sources = sources
	}
	return o, nil
}

func withLimiter(sys *types.SystemContext, lim types.RequestLimiter) *types.SystemContext {
	var c types.SystemContext
	if sys != nil {
		c = *sys
	}
	c.RequestLimiter = lim
	return &c
}

// sourceCtx returns the SystemContext for reading src.
func (p *Plan) sourceCtx(src *Source) *types.SystemContext {
	if src != nil && src.SystemContext != nil {
		return src.SystemContext
	}
	return p.opts.Copy.SourceCtx
}

// expand lists every source (several at once) and returns its images as items, in source
// order, plus the sources that could not be listed.
func (p *Plan) expand(ctx context.Context) ([]*Item, []*Source) {
	perSource := make([][]*Item, len(p.opts.Sources))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(planParallel)
	for i := range p.opts.Sources {
		src := &p.opts.Sources[i]
		g.Go(func() error {
			perSource[i] = p.expandSource(gctx, src)
			return nil
		})
	}
	_ = g.Wait()
	var items []*Item
	var failed []*Source
	for i, its := range perSource {
		if len(its) == 1 && its[0].Action == ActionFail && its[0].src == nil {
			failed = append(failed, &p.opts.Sources[i])
		}
		items = append(items, its...)
	}
	return dedupe(items), failed
}

// expandSource returns the items of one source; a source that cannot be read gives one fail
// item naming it.
func (p *Plan) expandSource(ctx context.Context, src *Source) []*Item {
	cands, err := p.candidates(ctx, src)
	if err != nil {
		if src.Origin != "" {
			err = errors.Wrapf(err, "source at %s", src.Origin)
		}
		return []*Item{{Source: src.Name, Destination: p.Destination, Action: ActionFail, Err: err, source: src}}
	}
	n := p.namingFor(src)
	items := make([]*Item, 0, len(cands))
	for _, c := range cands {
		it := &Item{Source: types.ImageName(c.ref), src: c.ref, source: src, literal: c.literal, SourceDigest: c.digest}
		items = append(items, it)
		name := c.name
		if name == nil && src.Destination != nil && c.digest != "" {
			// An unnamed image (crane pull --format oci of several images) has its digest;
			// the template gives the repository.
			name = &sourceName{digest: c.digest}
		}
		if name == nil {
			it.Destination, it.Action, it.Reason = p.Destination, ActionSkip, "the image has no name to give it in the destination (give its source a destination template "+templateHint+" to copy it by digest)"
			continue
		}
		it.Name, err = n.destinationName(name)
		_, localStore := p.store.(types.ImageLister) // registries take a bare name as a repository
		if err == nil && name.path == "" && src.Destination == nil && !localStore {
			err = errors.Wrapf(types.ErrUsage, "%s needs a repository in every name", p.Destination)
		}
		if err == nil {
			it.dest, err = p.store.ImageReference(it.Name)
		}
		if err != nil && name.path == "" && src.Destination == nil {
			err = errors.Wrapf(err, "the image is stored as %q, a tag without a repository: give its source a destination template "+templateHint, name.tag)
		}
		if err != nil {
			it.Destination = p.Destination
			it.Action, it.Err = ActionFail, errors.Wrapf(err, "naming %s in %s", it.Source, p.Destination)
			continue
		}
		it.Destination = types.ImageName(it.dest)
	}
	return items
}

// dedupe drops repeated (source, destination) pairs, e.g. a tag two filters both select.
func dedupe(items []*Item) []*Item {
	seen := map[[2]string]bool{}
	out := items[:0]
	for _, it := range items {
		k := [2]string{it.Source, it.Name}
		if it.Name != "" && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, it)
	}
	return out
}

// markConflicts fails images that two different sources would write under one name (e.g.
// a/app and b/app with skopeo's unscoped naming), rather than letting the last one win.
func markConflicts(items []*Item) {
	byName := map[string][]*Item{}
	for _, it := range items {
		if it.Name != "" && it.Action == "" {
			byName[it.Name] = append(byName[it.Name], it)
		}
	}
	for name, its := range byName {
		if len(its) < 2 {
			continue
		}
		var srcs []string
		for _, it := range its {
			srcs = append(srcs, it.Source)
		}
		for _, it := range its {
			it.Action = ActionFail
			it.Err = errors.Wrapf(types.ErrUsage, "%s and %d other source image(s) (%s) would all be written as %s: use --scoped or a destination template",
				it.Source, len(its)-1, strings.Join(srcs, ", "), name)
		}
	}
}

// resolve finds both digests of every pending item (several at once) and decides its action.
func (p *Plan) resolve(ctx context.Context, items []*Item) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(planParallel)
	for _, it := range items {
		if it.Action != "" {
			continue
		}
		g.Go(func() error {
			return p.resolveItem(gctx, it)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// resolveItem compares the item's source and destination digests and decides its action. Its
// error ends the plan: a local store that cannot be read as its transport's format (a file
// named oci:, a directory named oci-archive:) would fail every image the same way.
func (p *Plan) resolveItem(ctx context.Context, it *Item) error {
	literalDigest := it.literal && it.SourceDigest != ""
	if it.SourceDigest == "" {
		if md, ok := it.src.(types.ManifestDigester); ok {
			d, err := md.ManifestDigest(ctx, p.sourceCtx(it.source))
			switch {
			case types.Classify(err) == types.ClassNotFound && !it.literal:
				it.Action, it.Reason = ActionSkip, "no longer at the source"
				return nil
			case err != nil:
				it.Action, it.Err = ActionFail, err
				return nil
			}
			it.SourceDigest = d
		}
	}
	if md, ok := it.dest.(types.ManifestDigester); ok {
		d, err := md.ManifestDigest(ctx, p.opts.Copy.DestinationCtx)
		_, localStore := p.store.(types.ImageLister)
		switch {
		case types.Classify(err) == types.ClassNotFound: // nothing there yet (a new repository, archive, layout)
		case err != nil && localStore && types.Classify(err) == types.ClassUsage:
			return errors.Wrapf(err, "checking the destination %s", p.Destination)
		case err != nil:
			it.Action, it.Err = ActionFail, errors.Wrap(err, "checking the destination")
			return nil
		default:
			it.DestinationDigest = d
		}
	}
	it.Action, it.Reason = p.decide(it)
	if it.Action == ActionUpToDate && p.opts.Copy.ForceRecursive {
		// The digests match, but a blob or instance manifest may have been deleted at the
		// destination since: the copy checks each one and copies what is missing.
		it.Action, it.Reason, it.recheck = ActionCopy, "up to date; checking every blob and manifest (--force-recursive)", true
		return nil
	}
	if it.Action == ActionCopy && literalDigest {
		// A literal digest the destination lacks must exist at the source, as a literal tag
		// must (one HEAD), so that a dry run finds it missing rather than the copy.
		if md, ok := it.src.(types.ManifestDigester); ok {
			if _, err := md.ManifestDigest(ctx, p.sourceCtx(it.source)); err != nil {
				it.Action, it.Reason, it.Err = ActionFail, "", err
				return nil
			}
		}
	}
	if it.Action == ActionUpToDate {
		p.checkRelated(ctx, it)
	}
	return nil
}

// decide compares the digests: the destination is up to date when it has the source's
// manifest, or the one a previous copy of it wrote with the same options.
func (p *Plan) decide(it *Item) (Action, string) {
	switch {
	case it.DestinationDigest == "":
		return ActionCopy, "not at the destination"
	case it.SourceDigest == "":
		return ActionCopy, "source digest unknown"
	case it.DestinationDigest == it.SourceDigest:
		return ActionUpToDate, ""
	}
	if mc, ok := p.opts.Copy.BlobInfoCache.(types.ManifestMappingCache); ok {
		if w := mc.ManifestMapping(it.SourceDigest, p.variant(it)); w == it.DestinationDigest {
			return ActionUpToDate, "unchanged since it was last copied (as " + shortDigest(w) + ")"
		}
	}
	return ActionCopy, "the destination has " + shortDigest(it.DestinationDigest)
}

// candidate is one image a source selects.
type candidate struct {
	ref     types.ImageReference
	name    *sourceName   // the name it has at the source, for naming it in the destination
	digest  digest.Digest // when known without a request
	literal bool
}

// candidates returns the images src selects: its literal tags and digests, and the listed
// images its filters select (every listed image when it has neither).
func (p *Plan) candidates(ctx context.Context, src *Source) ([]candidate, error) {
	ref, err := p.opts.Transports.ParseImageName(src.Name)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, t := range src.Tags {
		c, err := p.literal(src, t)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(src.Tags) > 0 && len(src.Filters) == 0 {
		return out, nil
	}
	listed, err := listImages(ctx, ref, p.sourceCtx(src))
	if err != nil {
		return nil, err
	}
	listed = slices.DeleteFunc(listed, p.travelsWithImage)
	nameRootImage(ref, listed)
	return append(out, selectListed(listed, src.Filters)...), nil
}

// nameRootImage names an unnamed image that is the dir: source directory itself after that
// directory, tag latest unless the directory's name has one, as skopeo sync --src dir does
// (dir:/srv/app synced to docker://mirror.example/m is mirror.example/m/app:latest).
func nameRootImage(ref types.ImageReference, listed []types.ListedImage) {
	if ref.Transport().Name() != "dir" {
		return
	}
	for i := range listed {
		li := &listed[i]
		if li.Name != nil || li.StoredName != "" || types.ImageName(li.Ref) != types.ImageName(ref) {
			continue
		}
		base := filepath.Base(filepath.Clean(ref.StringWithinTransport()))
		named, err := reference.ParseNormalizedNamed(base)
		if err != nil {
			return // not an image name: the image stays unnamed and is skipped, saying why
		}
		if reference.IsNameOnly(named) {
			base += ":latest"
		}
		li.StoredName = base
	}
}

// literal returns the candidate for a literal tag or digest of src.
func (p *Plan) literal(src *Source, t string) (candidate, error) {
	name := src.Name + ":" + t
	d, isDigest := digest.Parse(t)
	if isDigest == nil {
		name = src.Name + "@" + t
	}
	ref, err := p.opts.Transports.ParseImageName(name)
	if err != nil {
		return candidate{}, errors.Wrapf(err, "tag %q of %s", t, src.Name)
	}
	c := candidate{ref: ref, name: nameOf(types.ListedImage{Name: ref.DockerReference()}), literal: true}
	if isDigest == nil {
		c.digest = d
	}
	return c, nil
}

// listImages lists the images ref selects; a reference that cannot list is one image.
func listImages(ctx context.Context, ref types.ImageReference, sys *types.SystemContext) ([]types.ListedImage, error) {
	l, ok := ref.(types.ImageLister)
	if !ok {
		return []types.ListedImage{{Ref: ref, Name: ref.DockerReference()}}, nil
	}
	return l.ListImages(ctx, sys) // its errors name what was listed
}

// selectListed applies filters to the listed images by tag (all of them without filters).
func selectListed(listed []types.ListedImage, filters []TagFilter) []candidate {
	var out []candidate
	if len(filters) == 0 {
		for _, li := range listed {
			out = append(out, candidate{ref: li.Ref, name: nameOf(li), digest: li.Digest})
		}
		return out
	}
	tags := make([]string, 0, len(listed))
	byTag := map[string]types.ListedImage{}
	for _, li := range listed {
		if n := nameOf(li); n != nil && n.tag != "" {
			if _, dup := byTag[n.tag]; !dup {
				tags = append(tags, n.tag)
			}
			byTag[n.tag] = li
		}
	}
	chosen := map[string]bool{}
	for _, f := range filters {
		for _, t := range f.Select(tags) {
			chosen[t] = true
		}
	}
	for _, t := range tags {
		if chosen[t] {
			li := byTag[t]
			out = append(out, candidate{ref: li.Ref, name: nameOf(li), digest: li.Digest})
		}
	}
	return out
}

// nameOf returns a listed image's name at its source, or nil when it has none usable.
func nameOf(li types.ListedImage) *sourceName {
	s := li.StoredName
	if s == "" && li.Name != nil {
		s = li.Name.String()
	}
	if s == "" {
		return nil
	}
	n, err := parseSourceName(s)
	if err != nil {
		return nil
	}
	return n
}

// Counts returns how many items the plan has per action.
func (p *Plan) Counts() map[Action]int {
	n := map[Action]int{}
	for _, it := range p.Items {
		n[it.Action]++
	}
	return n
}

// repository returns the repository part of a destination name (REPO:TAG or REPO@DIGEST).
// REPO holds no "@", and a ":" only in a scoped registry's port in a dir: store
// ("localhost:5000/app:1").
func repository(name string) string {
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[:i] // a tag; a colon before the last slash is a registry's port
	}
	return name
}

// sortedKeys returns m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shortDigest renders a digest for messages: the algorithm and 12 hex digits.
func shortDigest(d digest.Digest) string {
	if enc := d.Encoded(); len(enc) > 12 {
		return d.Algorithm().String() + ":" + enc[:12]
	}
	return d.String()
}
