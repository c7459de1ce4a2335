package copy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// writtenManifest is a manifest as written to the destination.
type writtenManifest struct {
	srcDigest digest.Digest
	digest    digest.Digest
	mimeType  string
	blob      []byte
	changed   bool // differs from the source manifest
}

// result turns the top-level written manifest into a Result.
func (w *writtenManifest) result(platform *types.Platform) *Result {
	return &Result{
		ManifestDigest: w.digest, MIMEType: w.mimeType, Manifest: w.blob, DigestChanged: w.changed,
		Instances: []InstanceResult{{SourceDigest: w.srcDigest, Digest: w.digest, MIMEType: w.mimeType, Platform: platform}},
	}
}

// singleCopy is the state of copying one single-image manifest.
type singleCopy struct {
	m         manifest.Manifest
	srcBlob   []byte
	srcDigest digest.Digest
	plans     []layerPlan
	mplan     manifestPlan
	convert1  bool   // schema1 source that may be converted: diff IDs and a config are needed
	config    []byte // the source config when it was read (verified) for its diff IDs
	// configCopied is set once the config was copied along with the layers (copyBlobs).
	configCopied bool
}

// copySingle copies one image: plan the manifest, skip the rest if the destination already
// has it (top level only), copy the layers and the config, write the manifest (trying the
// candidate types in turn). instance is nil for the top level.
func (c *copier) copySingle(ctx context.Context, manBlob []byte, mimeType string, instance *digest.Digest) (*writtenManifest, error) {
	sc, err := c.planSingle(manBlob, mimeType, instance)
	if err != nil {
		return nil, err
	}
	if instance == nil {
		if w, ok, err := c.skipIfPresent(ctx, sc.srcBlob, sc.mplan.Candidates[0], sc.srcDigest, sc.mplan.KeepOriginal); ok || err != nil {
			return w, err
		}
	}
	diffIDs, err := c.expectedDiffIDs(ctx, sc)
	if err != nil {
		return nil, err
	}
	layers, err := c.copyBlobs(ctx, sc, diffIDs)
	if err != nil {
		return nil, err
	}
	edits, err := c.copyConfig(ctx, sc, layers)
	if err != nil {
		return nil, err
	}
	return c.writeManifest(ctx, sc, edits, instance)
}

// copyBlobs copies the layers and, side by side with them, the config when it is copied as
// it is (a schema1 source's config is made from the layers afterwards, in copyConfig): one
// round of transfers instead of a config round after the layer round. When an end takes one
// blob call at a time, the config comes after the layers, in copyConfig.
func (c *copier) copyBlobs(ctx context.Context, sc *singleCopy, diffIDs []digest.Digest) ([]blobResult, error) {
	info := sc.m.ConfigInfo()
	if sc.convert1 || info.Digest == "" || !c.concurrentBlobs() {
		return c.copyLayers(ctx, sc, diffIDs)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if _, err := c.copyBlob(gctx, &blobJob{info: info, isConfig: true, layerIndex: -1, data: sc.config}); err != nil {
			return errors.Wrapf(err, "copying config %s", info.Digest)
		}
		sc.configCopied = true
		return nil
	})
	var layers []blobResult
	g.Go(func() error {
		var err error
		layers, err = c.copyLayers(gctx, sc, diffIDs)
		return err
	})
	return layers, g.Wait()
}

// planSingle parses the manifest and plans the layers and the manifest type; a top-level
// artifact (instance nil) is refused here when the destination holds only container images.
func (c *copier) planSingle(manBlob []byte, mimeType string, instance *digest.Digest) (*singleCopy, error) {
	m, err := manifest.FromBlob(manBlob, mimeType)
	if err != nil {
		return nil, errors.Wrap(err, "parsing source manifest")
	}
	srcDigest, err := manifest.Digest(manBlob)
	if err != nil {
		return nil, errors.Wrap(err, "computing source manifest digest")
	}
	if instance == nil && c.destProps.OnlyContainerImages {
		if err := manifest.RefuseArtifact(m, "a "+c.destRef.Transport().Name()); err != nil {
			return nil, err
		}
	}
	sc := &singleCopy{m: m, srcBlob: manBlob, srcDigest: srcDigest}
	in := manifestPlanInput{
		SrcMIMEType: m.MIMEType(), DestSupported: c.destProps.SupportedManifestMIMETypes,
		Force: c.opts.ForceManifestMIMEType, PreserveDigests: c.opts.PreserveDigests,
		DestUnusable: c.destProps.UnusableManifestMIMETypes,
	}
	if err := checkCompressionPossible(c.opts.DestinationCompression, c.opts.ForceManifestMIMEType, c.destProps); err != nil {
		return nil, err
	}
	noZstd := zstdImpossible(c.opts.ForceManifestMIMEType, c.destProps.SupportedManifestMIMETypes)
	for i, l := range m.LayerInfos() {
		if err := checkEncryptedLayer(i, l.MediaType, c.opts.DestinationCompression, c.opts.DestinationDecompress, c.opts.ForceManifestMIMEType); err != nil {
			return nil, err
		}
		p := planLayer(layerPlanInput{
			MediaType: l.MediaType, Compression: sourceLayerCompression(l.MediaType),
			Foreign: manifest.IsForeignLayer(l.MediaType), DestAcceptsForeign: c.destProps.AcceptsForeignLayerURLs,
			IncludeForeign: c.opts.IncludeNonDistributable,
			DestDesired:    c.destProps.DesiredLayerCompression,
			Compress:       c.opts.DestinationCompression, Decompress: c.opts.DestinationDecompress,
			NoZstd: noZstd,
		})
		if p.changes() && !in.LayersChange {
			in.LayerChange = describeLayerChange(i, p)
		}
		in.LayersChange = in.LayersChange || p.changes()
		in.NeedsOCI = in.NeedsOCI || (p.changes() && p.To == compressionZstd)
		sc.plans = append(sc.plans, p)
	}
	if sc.mplan, err = planManifest(in); err != nil {
		return nil, err
	}
	if err := checkSchema2Only(m, sc.mplan.Candidates); err != nil {
		return nil, err
	}
	sc.convert1 = manifest.IsSchema1Type(m.MIMEType()) && (!sc.mplan.KeepOriginal || len(sc.mplan.Candidates) > 1)
	logrus.WithFields(logrus.Fields{
		"source": m.MIMEType(), "candidates": strings.Join(sc.mplan.Candidates, ","),
		"keepOriginal": sc.mplan.KeepOriginal, "layersChange": in.LayersChange,
	}).Debugf("manifest plan: %s", sc.mplan.Reason)
	return sc, nil
}

// expectedDiffIDs reads the config's diff_ids when a layer is decompressed anyway, so the
// uncompressed content can be checked against them; nil when not needed or not available.
func (c *copier) expectedDiffIDs(ctx context.Context, sc *singleCopy) ([]digest.Digest, error) {
	needed := false
	for _, p := range sc.plans {
		needed = needed || p.Action == layerDecompress || p.Action == layerRecompress
	}
	if !needed || manifest.IsSchema1Type(sc.m.MIMEType()) {
		return nil, nil
	}
	cfg, err := c.readConfig(ctx, sc.m.ConfigInfo())
	if err != nil {
		return nil, err
	}
	sc.config = cfg
	ids, err := manifest.ConfigDiffIDs(cfg)
	if err != nil || len(ids) != len(sc.plans) {
		logrus.WithFields(logrus.Fields{"config": sc.m.ConfigInfo().Digest, "diffIDs": len(ids), "layers": len(sc.plans)}).
			Debugf("not checking layer diff IDs: %v", err)
		return nil, nil
	}
	return ids, nil
}

// readConfig reads and verifies a config blob from the source (configs are small).
func (c *copier) readConfig(ctx context.Context, info types.BlobInfo) ([]byte, error) {
	rc, _, err := c.src.GetBlob(ctx, info, types.GetBlobOptions{Cache: c.cache})
	if err != nil {
		return nil, errors.Wrapf(err, "fetching config %s from %s", info.Digest, types.ImageName(c.srcRef))
	}
	defer rc.Close()
	b, err := readVerified(rc, info)
	if err != nil {
		return nil, errors.Wrapf(err, "reading config %s", info.Digest)
	}
	return b, nil
}

// readVerified reads a small blob whole (capped) and checks its digest and size.
func readVerified(r io.Reader, info types.BlobInfo) ([]byte, error) {
	vr, err := verify.NewReader(r, info.Digest, info.Size)
	if err != nil {
		return nil, err
	}
	return iolimits.ReadAtMost(vr, iolimits.MaxConfigBodySize)
}

// copyLayers copies the layers, concurrently when both ends allow it, and returns them as
// written, one per source layer (skipped and schema1 empty layers as in the source).
func (c *copier) copyLayers(ctx context.Context, sc *singleCopy, diffIDs []digest.Digest) ([]blobResult, error) {
	layers := sc.m.LayerInfos()
	results := make([]blobResult, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.parallelism())
	for i, l := range layers {
		results[i] = blobResult{Info: l.BlobInfo}
		if sc.plans[i].Action == layerSkip {
			c.reportForeignKept(l.BlobInfo)
			continue
		}
		if l.EmptyLayer && sc.convert1 && !sc.mplan.KeepOriginal {
			continue
		}
		job := &blobJob{
			info: l.BlobInfo, plan: sc.plans[i], layerIndex: i,
			needDiffID: sc.convert1 && !l.EmptyLayer,
			foreign:    manifest.IsForeignLayer(l.MediaType),
			reuse: planReuse(reusePlanInput{
				Layer: sc.plans[i], PreserveDigests: c.opts.PreserveDigests, KeepManifest: sc.mplan.KeepOriginal,
			}),
		}
		if diffIDs != nil {
			job.expectedDiffID = diffIDs[i]
		}
		g.Go(func() error {
			res, err := c.copyBlob(gctx, job)
			if err != nil {
				return errors.Wrapf(err, "copying blob %s", job.info.Digest)
			}
			results[i] = res
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

func (c *copier) parallelism() int {
	if c.concurrentBlobs() {
		return c.opts.ImageParallelCopies
	}
	return 1
}

// concurrentBlobs tells whether both ends take blob calls from several goroutines at once.
func (c *copier) concurrentBlobs() bool {
	return c.srcProps.ConcurrentBlobs && c.destProps.ConcurrentBlobs
}

// manifestEdits are the changes the written manifest may need.
type manifestEdits struct {
	layers        []types.BlobInfo // one per source layer, as written
	layersChanged bool
	config        *types.BlobInfo                 // synthesized schema1 config; nil: the source's
	putConfig     func(ctx context.Context) error // uploads the synthesized config once; nil when none
}

// copyConfig records the layers as written and copies the source config unless copyBlobs
// did; for a schema1 source that may be converted it synthesizes a config from the layers'
// diff IDs instead.
func (c *copier) copyConfig(ctx context.Context, sc *singleCopy, layers []blobResult) (*manifestEdits, error) {
	e := &manifestEdits{}
	for i, l := range sc.m.LayerInfos() {
		layers[i].Info.Annotations = writtenLayerAnnotations(l.BlobInfo, layers[i].Info)
		e.layers = append(e.layers, layers[i].Info)
		e.layersChanged = e.layersChanged || !sameBlob(l.BlobInfo, layers[i].Info)
	}
	if sc.convert1 {
		return e, c.synthesizeConfig(ctx, sc, layers, e)
	}
	info := sc.m.ConfigInfo()
	if info.Digest == "" || sc.configCopied {
		return e, nil
	}
	if _, err := c.copyBlob(ctx, &blobJob{info: info, isConfig: true, layerIndex: -1, data: sc.config}); err != nil {
		return nil, errors.Wrapf(err, "copying config %s", info.Digest)
	}
	return e, nil
}

// synthesizeConfig builds the config of a schema1 image from its layers' diff IDs. It is
// uploaded at once when conversion is the plan, else only before a fallback needs it.
func (c *copier) synthesizeConfig(ctx context.Context, sc *singleCopy, layers []blobResult, e *manifestEdits) error {
	var diffIDs []digest.Digest
	for i, l := range sc.m.LayerInfos() {
		if !l.EmptyLayer {
			diffIDs = append(diffIDs, layers[i].DiffID)
		}
	}
	cfg, err := manifest.Schema1Config(sc.m, diffIDs)
	if err != nil {
		return errors.Wrap(err, "synthesizing config for schema1 image")
	}
	info := types.BlobInfo{Digest: digest.FromBytes(cfg), Size: int64(len(cfg)), MediaType: manifest.DockerV2Schema2ConfigMediaType}
	e.config = &info
	var once sync.Once
	var onceErr error
	e.putConfig = func(ctx context.Context) error {
		once.Do(func() {
			if _, err := c.copyBlob(ctx, &blobJob{info: info, isConfig: true, layerIndex: -1, data: cfg}); err != nil {
				onceErr = errors.Wrapf(err, "copying config %s", info.Digest)
			}
		})
		return onceErr
	}
	if !sc.mplan.KeepOriginal {
		return e.putConfig(ctx)
	}
	return nil
}

// sameBlob reports whether a written layer b is the source layer a (a size unknown in the
// source, as in schema1, is not a change).
func sameBlob(a, b types.BlobInfo) bool {
	return a.Digest == b.Digest && (a.Size == b.Size || a.Size < 0) && a.MediaType == b.MediaType
}

// manifestAttempt is one failed try to write a manifest type.
type manifestAttempt struct {
	mimeType string
	err      error
}

// ManifestAttemptsError is returned when every candidate manifest type failed; it lists
// each attempt and unwraps to each attempt's error (e.g. types.ManifestTypeRejectedError).
type ManifestAttemptsError struct {
	attempts []manifestAttempt
}

// Error implements error, listing every attempt.
func (e *ManifestAttemptsError) Error() string {
	parts := make([]string, 0, len(e.attempts))
	for _, a := range e.attempts {
		msg := a.err.Error()
		var rejected types.ManifestTypeRejectedError
		if errors.As(a.err, &rejected) && rejected.Err != nil {
			msg = "rejected: " + rejected.Err.Error()
		}
		parts = append(parts, fmt.Sprintf("%s: %s", a.mimeType, msg))
	}
	return "writing manifest: every candidate type failed: " + strings.Join(parts, "; ")
}

// Unwrap returns the error of every attempt.
func (e *ManifestAttemptsError) Unwrap() []error {
	errs := make([]error, 0, len(e.attempts))
	for _, a := range e.attempts {
		errs = append(errs, a.err)
	}
	return errs
}

// writeManifest writes the manifest as each candidate type in turn, going on to the next one
// when the destination rejects a type or the conversion is impossible.
func (c *copier) writeManifest(ctx context.Context, sc *singleCopy, e *manifestEdits, instance *digest.Digest) (*writtenManifest, error) {
	c.report.line("Writing manifest to image destination")
	var attempts []manifestAttempt
	for _, t := range sc.mplan.Candidates {
		b, err := c.renderManifest(ctx, sc, e, t)
		if err != nil {
			if errors.Is(err, manifest.ErrConversionLoss) || errors.Is(err, manifest.ErrUnsupportedMIMEType) {
				logrus.WithFields(logrus.Fields{"type": t}).Debugf("manifest conversion impossible: %v", err)
				attempts = append(attempts, manifestAttempt{t, err})
				continue
			}
			return nil, err
		}
		w, err := c.putManifest(ctx, b, t, instance)
		var rejected types.ManifestTypeRejectedError
		if errors.As(err, &rejected) {
			logrus.WithFields(logrus.Fields{"type": t}).Debugf("manifest type rejected by destination: %v", err)
			attempts = append(attempts, manifestAttempt{t, err})
			continue
		}
		if err != nil {
			return nil, err
		}
		w.srcDigest, w.changed = sc.srcDigest, w.digest != sc.srcDigest
		return w, nil
	}
	return nil, &ManifestAttemptsError{attempts: attempts}
}

// renderManifest serializes the manifest as type t: the source bytes when nothing changes,
// else converted and edited by manifest.Update.
func (c *copier) renderManifest(ctx context.Context, sc *singleCopy, e *manifestEdits, t string) ([]byte, error) {
	if t == sc.m.MIMEType() && !e.layersChanged {
		return sc.srcBlob, nil
	}
	opts := manifest.UpdateOptions{}
	if t != sc.m.MIMEType() {
		opts.MIMEType = t
	}
	if e.layersChanged || e.config != nil {
		opts.LayerInfos = e.layers
	}
	if e.config != nil && t != sc.m.MIMEType() {
		if err := e.putConfig(ctx); err != nil {
			return nil, err
		}
		opts.ConfigInfo = e.config
	}
	m, err := manifest.Update(sc.m, opts)
	if err != nil {
		return nil, errors.Wrapf(err, "converting manifest to %s", t)
	}
	b, err := m.Serialize()
	if err != nil {
		return nil, errors.Wrapf(err, "serializing %s manifest", t)
	}
	return b, nil
}

// putManifest writes one manifest (an instance when instance is non-nil, under its new digest).
func (c *copier) putManifest(ctx context.Context, b []byte, mimeType string, instance *digest.Digest) (*writtenManifest, error) {
	d, err := manifest.Digest(b)
	if err != nil {
		return nil, errors.Wrap(err, "computing manifest digest")
	}
	var inst *digest.Digest
	if instance != nil {
		inst = &d
	}
	unlock := c.lockManifests(c.destProps.ConcurrentManifests)
	err = c.dest.PutManifest(ctx, b, mimeType, inst)
	unlock()
	if err != nil {
		logrus.WithFields(logrus.Fields{"digest": d, "type": mimeType, "error": err}).Debug("writing the manifest failed")
		return nil, err // the destination names the manifest and itself (docs/transports.md)
	}
	logrus.WithFields(logrus.Fields{"digest": d, "type": mimeType, "instance": instance != nil}).Debug("manifest written")
	c.report.event(ProgressEvent{Kind: EventManifestWritten, Digest: d, MediaType: mimeType, Size: int64(len(b))})
	return &writtenManifest{digest: d, mimeType: mimeType, blob: b}, nil
}
