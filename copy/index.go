package copy

import (
	"context"
	"slices"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// copyTopIndex copies a multi-platform source: all or some instances plus the index, one
// instance as a single image, or only the index, as planInstances decides.
func (c *copier) copyTopIndex(ctx context.Context, blob []byte, mimeType string) (*Result, error) {
	idx, err := manifest.IndexFromBlob(blob, mimeType)
	if err != nil {
		return nil, errors.Wrap(err, "parsing source index")
	}
	mode, err := planInstances(instancePlanInput{
		Mode: c.opts.MultiArch, Platforms: len(c.opts.Platforms),
		DestAcceptsIndex: c.destProps.AcceptsIndex, DestPrefersSingle: c.destProps.PrefersSinglePlatform,
		EditsImages: c.opts.ForceManifestMIMEType != "" || c.opts.DestinationCompression != "" || c.opts.DestinationDecompress,
	})
	if err != nil {
		return nil, err
	}
	logrus.WithFields(logrus.Fields{"type": mimeType, "instances": len(idx.Instances())}).Debugf("multi-platform source: copying %s", mode)
	switch mode {
	case instancesOne:
		return c.copyOnePlatform(ctx, idx)
	case instancesIndexOnly:
		w, err := c.copyIndexOnly(ctx, blob, mimeType)
		if err != nil {
			return nil, err
		}
		return &Result{ManifestDigest: w.digest, MIMEType: w.mimeType, Manifest: w.blob}, nil
	}
	if mode == instancesAll {
		if res, ok, err := c.skipIndexIfPresent(ctx, idx, blob); ok || err != nil {
			return res, err
		}
	}
	var selected []manifest.IndexInstance
	if mode == instancesSubset {
		if selected, err = c.selectPlatforms(ctx, idx, c.opts.Platforms); err != nil {
			return nil, err
		}
	}
	w, instances, err := c.copyIndex(ctx, idx, blob, selected, nil)
	if err != nil {
		return nil, err
	}
	return &Result{ManifestDigest: w.digest, MIMEType: w.mimeType, Manifest: w.blob, DigestChanged: w.changed, Instances: instances}, nil
}

// copyOnePlatform copies the instance for the wanted platform (Options.Platforms[0] or the
// running one) as a single image, descending into nested indexes.
func (c *copier) copyOnePlatform(ctx context.Context, idx manifest.Index) (*Result, error) {
	want := c.systemPlatform()
	if len(c.opts.Platforms) > 0 {
		want = c.opts.Platforms[0]
	}
	inst, err := manifest.ResolveInstance(ctx, idx, want, func(ctx context.Context, d digest.Digest) ([]byte, string, error) {
		return c.getManifest(ctx, &d)
	})
	if err != nil {
		return nil, errors.Wrapf(err, "choosing the image for %s", platformString(want))
	}
	logrus.WithFields(logrus.Fields{"digest": inst.Digest, "platform": platformString(want)}).Debug("chose instance")
	w, err := c.copySingle(ctx, inst.Manifest, inst.MIMEType, nil)
	if err != nil {
		return nil, err
	}
	return w.result(inst.Platform), nil
}

// copyIndexOnly writes the index manifest alone; the destination must already hold its instances.
func (c *copier) copyIndexOnly(ctx context.Context, blob []byte, mimeType string) (*writtenManifest, error) {
	if dest := c.destProps.SupportedManifestMIMETypes; dest != nil && !slices.Contains(dest, mimeType) {
		return nil, errors.Errorf("copying only the index: destination does not accept %s", mimeType)
	}
	c.report.line("Writing manifest list to image destination")
	return c.putManifest(ctx, blob, mimeType, nil)
}

// copyIndex copies the selected instances (all when selected is nil) and then writes the
// index, rewritten when instances were dropped or changed. instance is nil for the top level.
func (c *copier) copyIndex(ctx context.Context, idx manifest.Index, blob []byte, selected []manifest.IndexInstance, instance *digest.Digest) (*writtenManifest, []InstanceResult, error) {
	all := idx.Instances()
	changed := selected != nil && len(selected) != len(all)
	if selected == nil {
		selected = all
	}
	c.report.line("Copying %d of %d images in list", len(selected), len(all))
	// Instances are copied side by side (their blobs share c.slots), so that small images do
	// not wait for each other's round trips; the index keeps the source's order.
	type instanceCopy struct {
		w   *writtenManifest
		sub []InstanceResult
	}
	copies := make([]instanceCopy, len(selected))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.parallelism())
	for i, inst := range selected {
		g.Go(func() error {
			c.report.line("Copying image %s (%d/%d)", shortDigest(inst.Digest), i+1, len(selected))
			w, sub, err := c.copyInstance(gctx, inst)
			if err != nil {
				return errors.Wrapf(err, "copying instance %s", inst.Digest)
			}
			copies[i] = instanceCopy{w: w, sub: sub}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var written []manifest.IndexInstance
	var results []InstanceResult
	for i, inst := range selected {
		w := copies[i].w
		changed = changed || w.changed
		ni := inst
		ni.Digest, ni.Size, ni.MediaType = w.digest, int64(len(w.blob)), w.mimeType
		written = append(written, ni)
		results = append(results, InstanceResult{SourceDigest: inst.Digest, Digest: w.digest, MIMEType: w.mimeType, Platform: inst.Platform})
		results = append(results, copies[i].sub...)
	}
	w, err := c.writeIndex(ctx, idx, blob, written, changed, instance)
	if err != nil {
		return nil, nil, err
	}
	return w, results, nil
}

// copyInstance copies one instance of an index: an image, or a nested index with all its instances.
func (c *copier) copyInstance(ctx context.Context, inst manifest.IndexInstance) (*writtenManifest, []InstanceResult, error) {
	b, mt, err := c.getManifest(ctx, &inst.Digest)
	if err != nil {
		return nil, nil, err
	}
	if !isIndexType(mt) {
		w, err := c.copySingle(ctx, b, mt, &inst.Digest)
		return w, nil, err
	}
	nested, err := manifest.IndexFromBlob(b, mt)
	if err != nil {
		return nil, nil, errors.Wrap(err, "parsing nested index")
	}
	return c.copyIndex(ctx, nested, b, nil, &inst.Digest)
}

// writeIndex writes the index after its instances: the source bytes when nothing changed,
// else rewritten with the written instances (and converted when planIndex says so).
func (c *copier) writeIndex(ctx context.Context, idx manifest.Index, blob []byte, written []manifest.IndexInstance, changed bool, instance *digest.Digest) (*writtenManifest, error) {
	in := indexPlanInput{
		SrcMIMEType: idx.MIMEType(), DestSupported: c.destProps.SupportedManifestMIMETypes,
		Force: c.opts.ForceManifestMIMEType, Changed: changed, PreserveDigests: c.opts.PreserveDigests,
	}
	for _, w := range written {
		in.InstancesOCI = in.InstancesOCI || w.MediaType == imgspecv1.MediaTypeImageManifest
	}
	p, err := planIndex(in)
	if err != nil {
		return nil, err
	}
	b := blob
	if !p.KeepOriginal {
		opts := manifest.IndexUpdateOptions{Instances: written}
		if p.MIMEType != idx.MIMEType() {
			opts.MIMEType = p.MIMEType
		}
		nidx, err := manifest.UpdateIndex(idx, opts)
		if err != nil {
			return nil, errors.Wrap(err, "updating index")
		}
		if b, err = nidx.Serialize(); err != nil {
			return nil, errors.Wrap(err, "serializing index")
		}
	}
	if instance == nil {
		c.report.line("Writing manifest list to image destination")
	}
	w, err := c.putManifest(ctx, b, p.MIMEType, instance)
	if err != nil {
		return nil, err
	}
	srcDigest, err := manifest.Digest(blob)
	if err != nil {
		return nil, err
	}
	w.srcDigest, w.changed = srcDigest, w.digest != srcDigest
	return w, nil
}

// selectPlatforms returns the instances matching the wanted platforms, with the buildx
// attestations (provenance, SBOM) of those images, in index order. An
// image only a nested index holds cannot be selected on its own (the nested index would have
// to be rewritten): the error says so and names the way out. With
// Options.SkipMissingPlatforms a platform the index lacks is left out.
func (c *copier) selectPlatforms(ctx context.Context, idx manifest.Index, want []types.Platform) ([]manifest.IndexInstance, error) {
	chosen := map[digest.Digest]bool{}
	var missing error
	for _, p := range want {
		inst, err := manifest.ChooseInstance(idx, p)
		if err == nil {
			chosen[inst.Digest] = true
			continue
		}
		err = errors.Wrapf(c.nestedPlatformError(ctx, idx, p), "selecting platform %s", platformString(p))
		if !c.opts.SkipMissingPlatforms || types.Classify(err) != types.ClassNotFound {
			return nil, err
		}
		logrus.WithFields(logrus.Fields{"platform": platformString(p)}).Debugf("leaving out a platform the index does not have: %v", err)
		if missing == nil {
			missing = err
		}
	}
	if len(chosen) == 0 {
		return nil, missing // only with SkipMissingPlatforms: none of the platforms is there
	}
	var out []manifest.IndexInstance
	added := map[digest.Digest]bool{}
	for _, inst := range idx.Instances() {
		subject, isAttestation := manifest.AttestationSubject(inst)
		if (chosen[inst.Digest] || (isAttestation && chosen[subject])) && !added[inst.Digest] {
			out = append(out, inst)
			added[inst.Digest] = true
		}
	}
	return out, nil
}

// nestedPlatformError explains why platform p is not among idx's own entries: it is in a
// nested index (a usage error), or nowhere (listing the platforms of every level).
func (c *copier) nestedPlatformError(ctx context.Context, idx manifest.Index, p types.Platform) error {
	inst, rerr := manifest.ResolveInstance(ctx, idx, p, func(ctx context.Context, d digest.Digest) ([]byte, string, error) {
		return c.getManifest(ctx, &d)
	})
	if rerr != nil {
		return rerr
	}
	return types.UsageError{Err: errors.Errorf("the image for it (%s) is listed by a nested index, which --platform does not split; "+
		"copy everything with --multi-arch all, or that image alone by its digest", inst.Digest)}
}

// systemPlatform is the running platform with the os/arch/variant overrides of the source
// context, completed from the destination context.
func (c *copier) systemPlatform() types.Platform {
	var sys types.SystemContext
	for _, s := range []*types.SystemContext{c.opts.SourceCtx, c.opts.DestinationCtx} {
		if s == nil {
			continue
		}
		if sys.OSChoice == "" {
			sys.OSChoice = s.OSChoice
		}
		if sys.ArchitectureChoice == "" {
			sys.ArchitectureChoice = s.ArchitectureChoice
		}
		if sys.VariantChoice == "" {
			sys.VariantChoice = s.VariantChoice
		}
	}
	return manifest.SystemPlatform(&sys)
}

func platformString(p types.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
