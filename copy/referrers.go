package copy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// This file is the "related manifests" step of a copy (Options.Referrers, Options.DigestTags):
// after the image's manifests and before Commit, the artifacts that refer to each manifest
// written unchanged, and the tags named after its digest, are copied through the same source
// and destination (types/referrers.go), byte for byte, so that a signature that verified at
// the source verifies at the destination.

// maxRelatedDepth bounds chains of referrers of referrers (a signature of an SBOM of an image
// is depth 2) and of digest tags of tagged manifests.
const maxRelatedDepth = 8

// RelatedResult describes one manifest copied with an image because it relates to it.
type RelatedResult struct {
	Digest   digest.Digest
	MIMEType string // "" for a digest tag found Present without reading it
	// Subject and ArtifactType are set for a referrer: the manifest it refers to, and its
	// artifactType as its own manifest says.
	Subject      digest.Digest
	ArtifactType string
	// Tag is set for a digest tag (e.g. "sha256-<hex>.sig").
	Tag string
	// Present is true when the destination listed the referrer, or had the digest tag pointing
	// at the same manifest, already: nothing was written.
	Present bool
}

// relatedCopy is the state of the related step of one copy.
type relatedCopy struct {
	c          *copier
	src        types.RelatedSource
	srcLister  types.ReferrersLister // nil when the source cannot list referrers
	dest       types.RelatedDestination
	destLister types.ReferrersLister // nil when the destination cannot list them
	srcTags    []string              // the source's tags, for DigestTags
	seen       map[string]bool       // referrer digests and tags handled
	res        *Result
}

// copyRelated copies the referrers and digest tags of the manifests res says were written
// unchanged; for those whose digest changed it only says what was left out. top and mimeType
// are the source's top-level manifest.
func (c *copier) copyRelated(ctx context.Context, res *Result, top []byte, mimeType string) error {
	if !c.opts.Referrers && !c.opts.DigestTags {
		return nil
	}
	srcTop, err := manifest.Digest(top)
	if err != nil {
		return errors.Wrap(err, "computing source manifest digest")
	}
	// One platform of an index copied as a single image leaves the index itself unwritten.
	topWritten := !isIndexType(mimeType) || isIndexType(res.MIMEType)
	subjects := writtenSubjects(res, srcTop, topWritten)
	r, err := c.newRelatedCopy(ctx, res, subjects)
	if err != nil || r == nil {
		return err
	}
	for _, s := range subjects {
		if s.source != s.written {
			r.leaveOutChanged(ctx, s.source, s.written, s.source == srcTop && isIndexType(mimeType) && len(c.opts.Platforms) > 0)
			continue
		}
		if err := r.relatedOf(ctx, s.source, 0); err != nil {
			return err
		}
	}
	return nil
}

// subjectDigest is a manifest the copy wrote: its digest at the source and as written.
type subjectDigest struct {
	source, written digest.Digest
}

// writtenSubjects lists the top-level manifest (when written) and every instance written,
// once each.
func writtenSubjects(res *Result, srcTop digest.Digest, topWritten bool) []subjectDigest {
	var out []subjectDigest
	add := func(src, written digest.Digest) {
		if src == "" || slices.ContainsFunc(out, func(s subjectDigest) bool { return s.source == src }) {
			return
		}
		out = append(out, subjectDigest{source: src, written: written})
	}
	if topWritten {
		add(srcTop, res.ManifestDigest)
	}
	for _, inst := range res.Instances {
		add(inst.SourceDigest, inst.Digest)
	}
	return out
}

// newRelatedCopy checks what both ends can do; it returns nil (after saying what is left
// out) when nothing can be copied.
func (c *copier) newRelatedCopy(ctx context.Context, res *Result, subjects []subjectDigest) (*relatedCopy, error) {
	r := &relatedCopy{c: c, seen: map[string]bool{}, res: res}
	r.src, _ = c.src.(types.RelatedSource)
	r.srcLister, _ = c.src.(types.ReferrersLister)
	r.dest, _ = c.dest.(types.RelatedDestination)
	r.destLister, _ = c.dest.(types.ReferrersLister)
	if r.src == nil {
		logrus.Warnf("%s cannot hold referrers or tagged signatures; there are none to copy", types.ImageName(c.srcRef))
		return nil, nil
	}
	if c.opts.DigestTags {
		tags, err := c.sourceTags(ctx)
		if err != nil {
			return nil, err
		}
		r.srcTags = tags
	}
	if r.dest == nil {
		r.leaveOutAll(ctx, subjects)
		return nil, nil
	}
	return r, nil
}

// sourceTags lists the tags of the source's repository or layout, sorted (see listTags).
func (c *copier) sourceTags(ctx context.Context) ([]string, error) {
	if _, ok := c.srcRef.(types.TagLister); !ok {
		logrus.Warnf("%s cannot list its tags; no digest tags copied", types.ImageName(c.srcRef))
	}
	return listTags(ctx, c.srcRef, c.opts.SourceCtx)
}

// relatedOf copies the referrers and digest tags of the manifest d, and theirs in turn.
func (r *relatedCopy) relatedOf(ctx context.Context, d digest.Digest, depth int) error {
	if depth >= maxRelatedDepth {
		logrus.WithFields(logrus.Fields{"digest": d}).Warnf("not following referrers deeper than %d levels", maxRelatedDepth)
		return nil
	}
	if r.c.opts.Referrers {
		if err := r.referrersOf(ctx, d, depth); err != nil {
			return err
		}
	}
	if r.c.opts.DigestTags {
		return r.digestTagsOf(ctx, d, depth)
	}
	return nil
}

// referrersOf copies the referrers of subject that the destination does not list yet.
func (r *relatedCopy) referrersOf(ctx context.Context, subject digest.Digest, depth int) error {
	descs, err := r.listSource(ctx, subject)
	if err != nil {
		return err
	}
	present := r.listDest(ctx, subject)
	for _, desc := range descs {
		key := desc.Digest.String()
		if r.seen[key] {
			continue
		}
		r.seen[key] = true
		if err := r.referrer(ctx, subject, desc, present[desc.Digest], depth); err != nil {
			return errors.Wrapf(err, "copying referrer %s of %s", desc.Digest, subject)
		}
	}
	return nil
}

// referrer copies one referrer of subject (unless present) and then what relates to it.
func (r *relatedCopy) referrer(ctx context.Context, subject digest.Digest, desc imgspecv1.Descriptor, present bool, depth int) error {
	b, mt, err := r.getManifest(ctx, desc.Digest.String(), desc.Digest)
	if errors.Is(err, types.ErrManifestNotFound) { // a stale referrers index, e.g. after a delete
		r.leaveOut("%s lists %s as a referrer of %s, but has no such manifest; skipped", types.ImageName(r.c.srcRef), desc.Digest, subject)
		return nil
	}
	if err != nil {
		return err
	}
	a, err := manifest.ArtifactOf(b)
	if err != nil {
		return err
	}
	log := logrus.WithFields(logrus.Fields{"digest": desc.Digest, "subject": subject, "artifactType": a.ArtifactType})
	if a.Subject == nil || a.Subject.Digest != subject {
		log.Warnf("the source lists %s as a referrer of %s, but its manifest does not refer to it; skipped", desc.Digest, subject)
		return nil
	}
	if len(r.c.opts.ReferrersTypes) > 0 && !slices.Contains(r.c.opts.ReferrersTypes, a.ArtifactType) {
		log.Debug("referrer's artifactType not selected; skipped with what refers to it")
		return nil
	}
	if present {
		log.Debug("destination lists the referrer already")
	} else {
		r.c.report.line("Copying referrer %s (%s) of %s", shortDigest(desc.Digest), typeText(a.ArtifactType), shortDigest(subject))
		if err := r.write(ctx, b, mt, "", depth); err != nil {
			var rejected types.ManifestTypeRejectedError
			if errors.As(err, &rejected) { // byte for byte: there is no other type to try
				return errors.Wrapf(err, "%s refuses the artifact (%s)", types.ImageName(r.c.destRef), typeText(a.ArtifactType))
			}
			return errors.Wrapf(err, "writing the artifact (%s)", typeText(a.ArtifactType))
		}
	}
	r.res.Related = append(r.res.Related, RelatedResult{Digest: desc.Digest, MIMEType: mt, Subject: subject, ArtifactType: a.ArtifactType, Present: present})
	return r.relatedOf(ctx, desc.Digest, depth+1)
}

func typeText(artifactType string) string {
	if artifactType == "" {
		return "no artifactType"
	}
	return artifactType
}

// digestTagsOf copies the source's tags "<alg>-<hex>.*" of d, and what relates to each.
func (r *relatedCopy) digestTagsOf(ctx context.Context, d digest.Digest, depth int) error {
	prefix := manifest.DigestTagPrefix(d)
	for _, tag := range r.srcTags {
		if !strings.HasPrefix(tag, prefix) || r.seen["tag:"+tag] {
			continue
		}
		r.seen["tag:"+tag] = true
		rel, err := r.digestTag(ctx, tag, depth)
		if err != nil {
			return errors.Wrapf(err, "copying digest tag %s", tag)
		}
		r.res.Related = append(r.res.Related, rel)
		if err := r.relatedOf(ctx, rel.Digest, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// digestTag copies one digest tag, unless both ends say (types.RelatedDigester) that it
// names the same manifest already: then the manifest is not even read.
func (r *relatedCopy) digestTag(ctx context.Context, tag string, depth int) (RelatedResult, error) {
	if d := r.tagDigest(ctx, r.src, tag); d != "" && r.tagDigest(ctx, r.dest, tag) == d {
		logrus.WithFields(logrus.Fields{"tag": tag, "digest": d}).Debug("destination has the digest tag already")
		return RelatedResult{Digest: d, Tag: tag, Present: true}, nil
	}
	b, mt, err := r.getManifest(ctx, tag, "")
	if err != nil {
		return RelatedResult{}, err
	}
	md, err := manifest.Digest(b)
	if err != nil {
		return RelatedResult{}, err
	}
	r.c.report.line("Copying digest tag %s (%s)", tag, shortDigest(md))
	if err := r.write(ctx, b, mt, tag, depth); err != nil {
		return RelatedResult{}, err
	}
	return RelatedResult{Digest: md, MIMEType: mt, Tag: tag}, nil
}

// tagDigest returns the digest end (a source or destination) gives tag without reading the
// manifest, "" when it cannot say.
func (r *relatedCopy) tagDigest(ctx context.Context, end any, tag string) digest.Digest {
	rd, ok := end.(types.RelatedDigester)
	if !ok {
		return ""
	}
	d, err := rd.RelatedDigest(ctx, tag)
	if err != nil {
		logrus.WithFields(logrus.Fields{"tag": tag}).Debugf("cannot resolve the tag: %v", err)
		return ""
	}
	return d
}

// listSource lists the referrers of subject at the source, sorted by digest.
func (r *relatedCopy) listSource(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	if r.srcLister == nil {
		return nil, nil
	}
	descs, err := r.srcLister.ListReferrers(ctx, subject)
	if err != nil {
		return nil, err
	}
	descs = slices.Clone(descs)
	sort.Slice(descs, func(i, j int) bool { return descs[i].Digest < descs[j].Digest })
	return descs, nil
}

// listDest returns the referrers of subject the destination lists; on failure none (the copy
// then writes them again, which is harmless).
func (r *relatedCopy) listDest(ctx context.Context, subject digest.Digest) map[digest.Digest]bool {
	present := map[digest.Digest]bool{}
	if r.destLister == nil {
		return present
	}
	descs, err := r.destLister.ListReferrers(ctx, subject)
	if err != nil {
		logrus.WithFields(logrus.Fields{"subject": subject}).Debugf("cannot list the destination's referrers, copying them all: %v", err)
		return present
	}
	for _, d := range descs {
		present[d.Digest] = true
	}
	return present
}

// getManifest reads a related manifest from the source and, when want is set, checks it.
func (r *relatedCopy) getManifest(ctx context.Context, ref string, want digest.Digest) ([]byte, string, error) {
	b, mt, err := r.src.GetRelatedManifest(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	if want != "" {
		if err := manifest.CheckDigest(b, want, -1); err != nil {
			return nil, "", errors.Wrapf(err, "reading manifest %s from %s", want, types.ImageName(r.c.srcRef))
		}
	}
	return b, manifestMIMEType(b, mt), nil
}

// write copies a related manifest byte for byte: the manifests of an index first, else the
// config and layers, then the manifest itself.
func (r *relatedCopy) write(ctx context.Context, b []byte, mt, tag string, depth int) error {
	if isIndexType(mt) {
		if err := r.writeInstances(ctx, b, mt, depth); err != nil {
			return err
		}
	} else if err := r.writeBlobs(ctx, b, mt); err != nil {
		return err
	}
	if err := r.dest.PutRelatedManifest(ctx, b, mt, types.PutRelatedOptions{Tag: tag}); err != nil {
		return err
	}
	d, _ := manifest.Digest(b)
	r.c.report.event(ProgressEvent{Kind: EventManifestWritten, Digest: d, MediaType: mt, Size: int64(len(b))})
	return nil
}

// writeInstances writes the manifests a related index lists.
func (r *relatedCopy) writeInstances(ctx context.Context, b []byte, mt string, depth int) error {
	if depth >= maxRelatedDepth {
		return errors.Errorf("indexes nested more than %d levels deep", maxRelatedDepth)
	}
	idx, err := manifest.IndexFromBlob(b, mt)
	if err != nil {
		return err
	}
	for _, inst := range idx.Instances() {
		cb, cmt, err := r.getManifest(ctx, inst.Digest.String(), inst.Digest)
		if err != nil {
			return err
		}
		if err := r.write(ctx, cb, cmt, "", depth+1); err != nil {
			return errors.Wrapf(err, "copying manifest %s", inst.Digest)
		}
	}
	return nil
}

// writeBlobs copies the config and layers of a related single-image manifest unchanged.
func (r *relatedCopy) writeBlobs(ctx context.Context, b []byte, mt string) error {
	m, err := manifest.FromBlob(b, mt)
	if err != nil {
		return err
	}
	if cfg := m.ConfigInfo(); cfg.Digest != "" {
		job := &blobJob{info: cfg, plan: layerPlan{Action: layerKeep, MediaType: cfg.MediaType}, isConfig: true, layerIndex: -1}
		if _, err := r.c.copyBlob(ctx, job); err != nil {
			return errors.Wrapf(err, "copying config %s", cfg.Digest)
		}
	}
	for i, l := range m.LayerInfos() {
		if len(l.URLs) > 0 && r.c.destProps.AcceptsForeignLayerURLs {
			continue
		}
		job := &blobJob{info: l.BlobInfo, plan: layerPlan{Action: layerKeep, MediaType: l.MediaType}, layerIndex: i}
		if _, err := r.c.copyBlob(ctx, job); err != nil {
			return errors.Wrapf(err, "copying blob %s", l.Digest)
		}
	}
	return nil
}

// leaveOut records and logs what was not copied.
func (r *relatedCopy) leaveOut(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logrus.Warn(msg)
	r.res.LeftOut = append(r.res.LeftOut, msg)
}

// leaveOutAll says which related manifests a destination that cannot hold them leaves out.
func (r *relatedCopy) leaveOutAll(ctx context.Context, subjects []subjectDigest) {
	var names []string
	for _, s := range subjects {
		names = append(names, r.relatedNames(ctx, s.source)...)
	}
	if len(names) > 0 {
		r.leaveOut("%s cannot hold artifacts or digest tags; left out: %s", types.ImageName(r.c.destRef), strings.Join(names, ", "))
	}
}

// leaveOutChanged says which related manifests of src are left out because the copy wrote
// it as written (another digest), so they would not verify; filtered is true when src is an
// index written with only the platforms selected.
func (r *relatedCopy) leaveOutChanged(ctx context.Context, src, written digest.Digest, filtered bool) {
	why := "a conversion changed its digest"
	if filtered {
		why = "an index of only the platforms selected with --platform; copy all platforms to keep them"
	}
	if names := r.relatedNames(ctx, src); len(names) > 0 {
		r.leaveOut("%s was written as %s (%s), so what refers to it would not verify; left out: %s",
			src, written, why, strings.Join(names, ", "))
	}
}

// artifactType returns the artifactType of a listed referrer as its manifest says (as the
// copy decides, since registries list some types wrongly), else as listed.
func (r *relatedCopy) artifactType(ctx context.Context, desc imgspecv1.Descriptor) string {
	b, _, err := r.getManifest(ctx, desc.Digest.String(), desc.Digest)
	if err == nil {
		var a manifest.Artifact
		if a, err = manifest.ArtifactOf(b); err == nil {
			return a.ArtifactType
		}
	}
	logrus.WithFields(logrus.Fields{"digest": desc.Digest}).Debugf("cannot read the referrer's type, naming the listed one: %v", err)
	return desc.ArtifactType
}

// relatedNames names the referrers and digest tags of d at the source (best effort).
func (r *relatedCopy) relatedNames(ctx context.Context, d digest.Digest) []string {
	var names []string
	if r.c.opts.Referrers {
		descs, err := r.listSource(ctx, d)
		if err != nil {
			logrus.WithFields(logrus.Fields{"digest": d}).Debugf("cannot list referrers: %v", err)
		}
		for _, desc := range descs {
			names = append(names, fmt.Sprintf("referrer %s (%s) of %s", desc.Digest, typeText(r.artifactType(ctx, desc)), shortDigest(d)))
		}
	}
	prefix := manifest.DigestTagPrefix(d)
	for _, tag := range r.srcTags {
		if strings.HasPrefix(tag, prefix) {
			names = append(names, "tag "+tag)
		}
	}
	return names
}
