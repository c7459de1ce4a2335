package layout

import (
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// Referrers in a layout (types/referrers.go). There is no released specification yet, so we
// write what the tools that read layouts find: the referrers of a subject are listed in one
// OCI index, the subject's referrers index, stored as a blob and entered in index.json
// named with the distribution-spec's tag schema ("sha256-<hex>", as regctl reads and writes
// it) and annotated with org.opencontainers.image.referrer.subject (the image-spec's draft,
// PR #1171, as olareg reads it). oras finds them by walking index.json. When reading we also
// accept either form alone, and the manifests with a subject that oras lists in index.json
// without a name.

// AnnotationReferrerSubject marks an index.json entry as the referrers index of the subject
// digest it holds (image-spec main branch draft, PR #1171).
const AnnotationReferrerSubject = "org.opencontainers.image.referrer.subject"

var (
	_ types.ReferrersLister    = (*source)(nil)
	_ types.RelatedSource      = (*source)(nil)
	_ types.ReferrersLister    = (*destination)(nil)
	_ types.RelatedDestination = (*destination)(nil)
)

// IsReferrersIndex reports whether an index.json entry is a referrers index rather than an
// image: an OCI index annotated with its subject or named with the tag schema.
func IsReferrersIndex(desc imgspecv1.Descriptor) bool {
	return desc.MediaType == imgspecv1.MediaTypeImageIndex &&
		(desc.Annotations[AnnotationReferrerSubject] != "" || manifest.IsFallbackTag(RefName(desc)))
}

// IsRelatedEntry reports whether an index.json entry holds what belongs to an image rather than
// an image of its own: a referrers index, or a manifest named after another's digest (cosign's
// sha256-<hex>.sig), or a signature or attestation stored by cosign save (cosign.go). A
// layout's "only image" is chosen among the other entries.
func IsRelatedEntry(desc imgspecv1.Descriptor) bool {
	return IsReferrersIndex(desc) || manifest.IsDigestTag(RefName(desc)) || isCosignAttachment(desc)
}

// isReferrersIndexOf reports whether an index.json entry is the referrers index of subject.
func isReferrersIndexOf(desc imgspecv1.Descriptor, subject digest.Digest) bool {
	return desc.MediaType == imgspecv1.MediaTypeImageIndex &&
		(desc.Annotations[AnnotationReferrerSubject] == subject.String() || RefName(desc) == manifest.FallbackTag(subject))
}

// ListReferrersFS returns the referrers of subject that the referrers indexes of the layout
// in fsys (with index.json idx) list, without duplicates; where names the layout in errors.
func ListReferrersFS(fsys fs.FS, idx *imgspecv1.Index, subject digest.Digest, where string) ([]imgspecv1.Descriptor, error) {
	var out []imgspecv1.Descriptor
	for _, e := range entriesOf(idx).referrersIndexes(idx, subject) {
		b, err := readManifestBlob(fsys, e, where)
		if err != nil {
			return nil, err
		}
		descs, err := manifest.ParseReferrersIndex(b)
		if err != nil {
			return nil, errors.Wrapf(err, "%s: referrers index %s of %s", where, e.Digest, subject)
		}
		out = appendNew(out, descs...)
	}
	if out == nil {
		out = []imgspecv1.Descriptor{}
	}
	return out, nil
}

// appendNew appends the descriptors whose digest list does not hold yet.
func appendNew(list []imgspecv1.Descriptor, descs ...imgspecv1.Descriptor) []imgspecv1.Descriptor {
	for _, d := range descs {
		if !slices.ContainsFunc(list, func(e imgspecv1.Descriptor) bool { return e.Digest == d.Digest }) {
			list = append(list, d)
		}
	}
	return list
}

// unnamedReferrers maps subjects to the manifests listed in index.json without a name that
// refer to them, as oras stores every manifest it pushes into a layout.
func unnamedReferrers(fsys fs.FS, idx *imgspecv1.Index, where string) (map[digest.Digest][]imgspecv1.Descriptor, error) {
	out := map[digest.Digest][]imgspecv1.Descriptor{}
	for _, e := range pickEntries(idx, entriesOf(idx).unnamed) {
		b, err := readManifestBlob(fsys, e, where)
		if err != nil {
			return nil, err
		}
		a, err := manifest.ArtifactOf(b)
		if err != nil || a.Subject == nil {
			continue // not a referrer (or not one we can read): an image, listed for itself
		}
		desc, err := manifest.ReferrerDescriptor(b, e.MediaType)
		if err != nil {
			continue
		}
		out[a.Subject.Digest] = appendNew(out[a.Subject.Digest], desc)
	}
	return out, nil
}

// ListReferrers implements types.ReferrersLister: the referrers indexes in index.json, and
// the manifests with that subject index.json lists without a name (scanned once per source).
func (s *source) ListReferrers(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	idx, err := readIndexShared(s.fsys, s.where)
	if err != nil {
		return nil, errors.Wrapf(err, "listing referrers of %s in %s", subject, types.ImageName(s.ref))
	}
	descs, err := ListReferrersFS(s.fsys, idx, subject, s.where)
	if err != nil {
		return nil, errors.Wrapf(err, "listing referrers of %s in %s", subject, types.ImageName(s.ref))
	}
	s.unnamedOnce.Do(func() { s.unnamed, s.unnamedErr = unnamedReferrers(s.fsys, idx, s.where) })
	if s.unnamedErr != nil {
		return nil, errors.Wrapf(s.unnamedErr, "listing referrers of %s in %s", subject, types.ImageName(s.ref))
	}
	return appendNew(descs, s.unnamed[subject]...), nil
}

// GetRelatedManifest implements types.RelatedSource: a digest names any manifest blob of the
// layout, a tag an index.json entry.
func (s *source) GetRelatedManifest(ctx context.Context, ref string) ([]byte, string, error) {
	if d, err := digest.Parse(ref); err == nil {
		b, err := readBlobByDigest(s.fsys, d, s.where)
		if err != nil {
			return nil, "", errors.Wrapf(err, "reading manifest %s from %s", d, types.ImageName(s.ref))
		}
		return b, manifest.GuessMIMEType(b), nil
	}
	idx, err := readIndexShared(s.fsys, s.where)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading manifest %s from %s", ref, types.ImageName(s.ref))
	}
	desc, err := selectImage(idx, ref, "", s.where)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading manifest %s from %s", ref, types.ImageName(s.ref))
	}
	b, err := readManifestBlob(s.fsys, desc, s.where)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading manifest %s from %s", ref, types.ImageName(s.ref))
	}
	return b, mimeTypeOf(desc, b), nil
}

// readBlobByDigest reads a manifest blob whose size is not known and checks its digest.
func readBlobByDigest(fsys fs.FS, d digest.Digest, where string) ([]byte, error) {
	p, err := BlobPath(d)
	if err != nil {
		return nil, err
	}
	b, err := readSmall(fsys, p, iolimits.MaxManifestBodySize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.Wrapf(types.ErrManifestNotFound, "%s: manifest %s is not in the layout", where, d)
	}
	if err != nil {
		return nil, errors.Wrapf(err, "%s: reading %s", where, p)
	}
	if err := manifest.CheckDigest(b, d, -1); err != nil {
		return nil, errors.Wrapf(err, "%s: %s does not match its name", where, p)
	}
	return b, nil
}

// Related is a manifest written next to an image: a referrer of another manifest, a tagged
// manifest, or both.
type Related struct {
	// Desc is the manifest's index.json descriptor (mediaType, digest, size).
	Desc imgspecv1.Descriptor
	// Tag names the manifest in index.json; "" for none.
	Tag string
	// Subject is the manifest it refers to; "" when it is no referrer. Referrer is then the
	// entry its subject's referrers index lists for it.
	Subject  digest.Digest
	Referrer imgspecv1.Descriptor
}

// RelatedOf describes the manifest body of type mimeType written with the name tag ("" for
// none), or returns ok false when it has neither a subject nor a name.
func RelatedOf(body []byte, mimeType, tag string) (Related, bool, error) {
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(body)
	}
	r := Related{Desc: imgspecv1.Descriptor{MediaType: mimeType, Digest: digest.FromBytes(body), Size: int64(len(body))}, Tag: tag}
	a, err := manifest.ArtifactOf(body)
	if err != nil {
		return Related{}, false, err
	}
	if a.Subject != nil {
		r.Subject = a.Subject.Digest
		r.Referrer = imgspecv1.Descriptor{MediaType: mimeType, Digest: r.Desc.Digest, Size: r.Desc.Size,
			ArtifactType: a.ArtifactType, Annotations: a.Annotations}
	}
	return r, r.Subject != "" || tag != "", nil
}

// UpdateRelated returns idx with related recorded: each tag as a named entry (replacing an
// entry of that name) and each referrer added to its subject's referrers index, which gets
// one entry carrying both the tag-schema name and the subject annotation. The new referrers
// index blobs are returned for the caller to store; readBlob reads an existing index.
func UpdateRelated(idx *imgspecv1.Index, related []Related, readBlob func(imgspecv1.Descriptor) ([]byte, error)) (*imgspecv1.Index, map[digest.Digest][]byte, error) {
	bySubject := map[digest.Digest][]imgspecv1.Descriptor{}
	for _, r := range related {
		if r.Tag != "" {
			idx = UpdateIndex(idx, r.Desc, r.Tag)
		}
		if r.Subject != "" {
			bySubject[r.Subject] = append(bySubject[r.Subject], r.Referrer)
		}
	}
	subjects := make([]digest.Digest, 0, len(bySubject))
	for s := range bySubject {
		subjects = append(subjects, s)
	}
	sort.Slice(subjects, func(i, j int) bool { return subjects[i] < subjects[j] })
	blobs := map[digest.Digest][]byte{}
	for _, s := range subjects {
		var err error
		if idx, err = addReferrers(idx, s, bySubject[s], readBlob, blobs); err != nil {
			return nil, nil, errors.Wrapf(err, "recording referrers of %s", s)
		}
	}
	return idx, blobs, nil
}

// addReferrers merges the referrers indexes of subject in idx and add into one index; a new
// index blob goes into blobs.
func addReferrers(idx *imgspecv1.Index, subject digest.Digest, add []imgspecv1.Descriptor, readBlob func(imgspecv1.Descriptor) ([]byte, error), blobs map[digest.Digest][]byte) (*imgspecv1.Index, error) {
	var cur []byte
	var keep []imgspecv1.Descriptor
	for _, e := range idx.Manifests {
		if !isReferrersIndexOf(e, subject) {
			keep = append(keep, e)
			continue
		}
		b, err := readBlob(e)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			cur = b
			continue
		}
		descs, err := manifest.ParseReferrersIndex(b) // a second index (another tool's form)
		if err != nil {
			return nil, err
		}
		add = append(descs, add...)
	}
	next, changed, err := manifest.AddReferrers(cur, add)
	if err != nil {
		return nil, err
	}
	d := digest.FromBytes(next)
	if changed {
		blobs[d] = next
		logrus.WithFields(logrus.Fields{"subject": subject, "index": d}).Debug("referrers index updated")
	}
	entry := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageIndex, Digest: d, Size: int64(len(next)),
		Annotations: map[string]string{imgspecv1.AnnotationRefName: manifest.FallbackTag(subject), AnnotationReferrerSubject: subject.String()}}
	res := *idx
	res.Manifests = append(keep, entry)
	return &res, nil
}

// ListReferrers implements types.ReferrersLister: the layout's referrers indexes as committed.
func (d *destination) ListReferrers(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	if _, err := d.root.Stat(IndexFile); errors.Is(err, fs.ErrNotExist) {
		return []imgspecv1.Descriptor{}, nil
	}
	idx, err := readIndexShared(d.root.FS(), d.ref.path)
	if err == nil {
		var descs []imgspecv1.Descriptor
		if descs, err = ListReferrersFS(d.root.FS(), idx, subject, d.ref.path); err == nil {
			return descs, nil
		}
	}
	return nil, errors.Wrapf(err, "listing referrers of %s in %s", subject, types.ImageName(d.ref))
}

// PutRelatedManifest implements types.RelatedDestination. The manifest is staged like the
// image's; Commit names it and records it in its subject's referrers index, under the layout
// lock, so concurrent writers of the same layout never lose each other's entries.
func (d *destination) PutRelatedManifest(ctx context.Context, body []byte, mimeType string, opts types.PutRelatedOptions) error {
	if opts.Tag != "" {
		if err := ValidateRefName(opts.Tag); err != nil {
			return err
		}
	}
	r, ok, err := RelatedOf(body, mimeType, opts.Tag)
	if err != nil {
		return errors.Wrapf(err, "writing manifest to %s", types.ImageName(d.ref))
	}
	if err := d.syncer.StageFile(filepath.Join(d.staging, stagedName(r.Desc.Digest)), body, 0o644); err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", r.Desc.Digest, types.ImageName(d.ref))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.staged[r.Desc.Digest] = r.Desc.Size
	if ok {
		d.related = append(d.related, r)
	}
	return nil
}

// relatedToCommit returns the related manifests to record at Commit: those written with
// PutRelatedManifest, and the image itself when it refers to a subject.
func (d *destination) relatedToCommit() []Related {
	related := d.related
	if top, ok, err := RelatedOf(d.topBody, d.top.MediaType, ""); err == nil && ok {
		related = append(slices.Clone(related), top)
	}
	return related
}

// commitRelated checks that every related manifest is complete and records them in idx,
// storing new referrers indexes; the caller holds the layout lock and d.mu.
func (d *destination) commitRelated(idx *imgspecv1.Index, related []Related) (*imgspecv1.Index, error) {
	for _, r := range related {
		if err := d.checkComplete(r.Desc); err != nil {
			return nil, err
		}
	}
	idx, blobs, err := UpdateRelated(idx, related, func(desc imgspecv1.Descriptor) ([]byte, error) {
		return readManifestBlob(d.root.FS(), desc, d.ref.path)
	})
	if err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	for dg, b := range blobs {
		p, _ := BlobPath(dg)
		if err := d.root.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, errors.Wrapf(err, "creating %s", filepath.Dir(p))
		}
		if err := d.syncer.WriteFile(filepath.Join(d.ref.path, p), b, 0o644); err != nil {
			return nil, errors.Wrapf(err, "writing referrers index %s", dg)
		}
		dirs[filepath.Dir(p)] = true
	}
	if len(dirs) == 0 {
		return idx, nil
	}
	return idx, syncBlobDirs(d.syncer, d.ref.path, dirs, false)
}
