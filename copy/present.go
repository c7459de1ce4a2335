package copy

import (
	"context"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// This file is the "skip if present" step of a warm re-copy: when the top-level manifest
// would be written byte-exact and the destination (a types.ManifestChecker) already stores
// it with everything it references, only the manifest is written again and committed, to
// (re)name it, as crane and regctl do (issue 8).

// skipIfPresent writes only the top-level manifest blob (the source bytes, of srcDigest) when
// exact says it would be written unchanged and the destination already has it. ok is false
// when the normal copy must run: the destination cannot tell, does not have it, the check
// failed (logged) other than for the network (an error), or it refused the manifest type (the
// normal copy may then convert); always with Options.ForceRecursive.
func (c *copier) skipIfPresent(ctx context.Context, blob []byte, mimeType string, srcDigest digest.Digest, exact bool) (w *writtenManifest, ok bool, err error) {
	checker, isChecker := c.dest.(types.ManifestChecker)
	if !exact || !isChecker || c.opts.ForceRecursive {
		return nil, false, nil
	}
	log := logrus.WithFields(logrus.Fields{"digest": srcDigest})
	has, err := checker.HasManifest(ctx, srcDigest)
	if err != nil && types.Classify(err) == types.ClassNetwork {
		// A destination that could not be reached, after every retry, will not take the blobs
		// either: report the failure now rather than wait for it again for each blob.
		return nil, false, err
	}
	if err != nil {
		log.Debugf("cannot tell whether the destination has the manifest, copying it all: %v", err)
		return nil, false, nil
	}
	if !has {
		log.Debug("destination does not have the manifest yet")
		return nil, false, nil
	}
	log.Debugf("destination already has manifest %s; skipping blobs", srcDigest)
	w, err = c.putManifest(ctx, blob, mimeType, nil)
	var rejected types.ManifestTypeRejectedError
	if errors.As(err, &rejected) {
		log.Debugf("destination refused the manifest type again, copying it all: %v", err)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	c.report.line("Skipping: destination already has %s", srcDigest)
	w.srcDigest = srcDigest
	c.alreadyPresent = true
	return w, true, nil
}

// skipIndexIfPresent is skipIfPresent for a multi-platform source copied with all its
// instances. The result lists the index's direct instances as the destination has them.
func (c *copier) skipIndexIfPresent(ctx context.Context, idx manifest.Index, blob []byte) (*Result, bool, error) {
	in := indexExactInput{
		Index: indexPlanInput{
			SrcMIMEType: idx.MIMEType(), DestSupported: c.destProps.SupportedManifestMIMETypes,
			Force: c.opts.ForceManifestMIMEType, PreserveDigests: c.opts.PreserveDigests,
		},
		Compress: c.opts.DestinationCompression, Decompress: c.opts.DestinationDecompress,
		DestDesired: c.destProps.DesiredLayerCompression,
	}
	for _, inst := range idx.Instances() {
		in.InstanceTypes = append(in.InstanceTypes, inst.MediaType)
	}
	srcDigest, err := manifest.Digest(blob)
	if err != nil {
		return nil, false, errors.Wrap(err, "computing source index digest")
	}
	w, ok, err := c.skipIfPresent(ctx, blob, idx.MIMEType(), srcDigest, indexWrittenExact(in))
	if !ok || err != nil {
		return nil, ok, err
	}
	res := &Result{ManifestDigest: w.digest, MIMEType: w.mimeType, Manifest: w.blob}
	for _, inst := range idx.Instances() {
		res.Instances = append(res.Instances, InstanceResult{SourceDigest: inst.Digest, Digest: inst.Digest, MIMEType: inst.MediaType, Platform: inst.Platform})
	}
	return res, true, nil
}
