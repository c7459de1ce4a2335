package docker

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	distref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// Referrers on a registry (types/referrers.go, distribution-spec v1.1 "Listing Referrers" and
// "Pushing Manifests with Subject"). Listing asks the referrers API and falls back to the
// referrers tag schema ("<alg>-<hex>") when the registry does not serve it. A pushed manifest
// with a subject is added to the subject's tag-schema index at Commit unless the registry
// answered its PUT with OCI-Subject; go-containerregistry's registry serves the API but never
// sends the header, so there both are kept, as the spec asks.

const (
	// maxReferrersPages bounds the pages of a referrers response followed through Link headers.
	maxReferrersPages = 1000
	// maxIndexUpdates bounds the read-merge-write rounds of one referrers index update.
	maxIndexUpdates = 10
	// minSettle and maxSettle bound the wait before a referrers index is read back.
	minSettle, maxSettle = 100 * time.Millisecond, 2 * time.Second
)

// settleDelay is how long to wait before reading back a referrers index we wrote, given how
// long our own read and write took (round): another writer that read the index before our
// write lands took about as long, so twice that, at least minSettle, covers it in practice
// (measured against CNCF distribution 2.8: two writers started together lost an entry in
// half the runs without the wait).
func settleDelay(round time.Duration) time.Duration {
	return min(max(2*round, minSettle), maxSettle)
}

var (
	_ types.ReferrersLister    = (*source)(nil)
	_ types.RelatedSource      = (*source)(nil)
	_ types.ReferrersLister    = (*destination)(nil)
	_ types.RelatedDestination = (*destination)(nil)
	_ types.RelatedDigester    = (*source)(nil)
	_ types.RelatedDigester    = (*destination)(nil)
	_ types.LazySourceOpener   = reference{}
)

// anchoredTagRE matches a whole tag.
var anchoredTagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^` + distref.TagRegexp.String() + `$`) })

// relatedWrites are what a destination records for Commit: referrers the registry did not
// process, by subject in first-seen order, and tags of related manifests.
type relatedWrites struct {
	mu        sync.Mutex
	subjects  []digest.Digest
	referrers map[digest.Digest][]imgspecv1.Descriptor
	tags      []relatedTag
}

type relatedTag struct {
	tag      string
	body     []byte
	mimeType string
}

func (w *relatedWrites) addReferrer(subject digest.Digest, desc imgspecv1.Descriptor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.referrers == nil {
		w.referrers = map[digest.Digest][]imgspecv1.Descriptor{}
	}
	if _, ok := w.referrers[subject]; !ok {
		w.subjects = append(w.subjects, subject)
	}
	w.referrers[subject] = append(w.referrers[subject], desc)
}

// ListReferrers implements types.ReferrersLister.
func (s *source) ListReferrers(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	descs, err := s.c.listReferrers(ctx, subject, s.scopes)
	if err != nil {
		return nil, errors.Wrapf(err, "listing referrers of %s in %s", subject, s.c.name())
	}
	return descs, nil
}

// GetRelatedManifest implements types.RelatedSource: a manifest of the repository by digest
// (verified) or tag.
func (s *source) GetRelatedManifest(ctx context.Context, ref string) ([]byte, string, error) {
	if _, err := digest.Parse(ref); err != nil && !anchoredTagRE().MatchString(ref) {
		return nil, "", errors.Errorf("reading manifest %q of %s: neither a digest nor a tag", ref, s.c.name())
	}
	b, mt, err := s.c.getManifest(ctx, ref, s.scopes)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading manifest %s of %s", ref, s.c.name())
	}
	return b, mt, nil
}

// NewLazyImageSource implements types.LazySourceOpener: the source fetches the image's
// manifest only when asked for it.
func (r reference) NewLazyImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	s, err := newLazySource(sys, r)
	if err != nil {
		return nil, err // not a nil *source in the interface
	}
	return s, nil
}

// RelatedDigest implements types.RelatedDigester with a HEAD of the tag.
func (s *source) RelatedDigest(ctx context.Context, tag string) (digest.Digest, error) {
	return relatedDigest(ctx, s.c, tag, s.scopes)
}

func relatedDigest(ctx context.Context, c *client, tag string, scopes []scope) (digest.Digest, error) {
	if !anchoredTagRE().MatchString(tag) {
		return "", errors.Errorf("resolving tag %q of %s: not a tag", tag, c.name())
	}
	d, err := c.resolveDigest(ctx, tag, scopes)
	if err != nil {
		return "", errors.Wrapf(err, "resolving tag %s of %s", tag, c.name())
	}
	return d, nil
}

// RelatedDigest implements types.RelatedDigester with a HEAD of the tag.
func (d *destination) RelatedDigest(ctx context.Context, tag string) (digest.Digest, error) {
	return relatedDigest(ctx, d.c, tag, d.scopes)
}

// ListReferrers implements types.ReferrersLister.
func (d *destination) ListReferrers(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	descs, err := d.c.listReferrers(ctx, subject, d.scopes)
	if err != nil {
		return nil, errors.Wrapf(err, "listing referrers of %s in %s", subject, d.c.name())
	}
	return descs, nil
}

// listReferrers asks the referrers API, else reads the tag-schema index (none: empty list).
func (c *client) listReferrers(ctx context.Context, subject digest.Digest, scopes []scope) ([]imgspecv1.Descriptor, error) {
	if err := subject.Validate(); err != nil {
		return nil, errors.Wrapf(err, "invalid subject digest %q", subject)
	}
	descs, supported, err := c.referrersAPI(ctx, subject, scopes)
	if err != nil || supported {
		return descs, err
	}
	tag := manifest.FallbackTag(subject)
	b, _, err := c.getReferrersIndex(ctx, tag, scopes)
	if err != nil || b == nil {
		return []imgspecv1.Descriptor{}, err
	}
	descs, err = manifest.ParseReferrersIndex(b)
	if what := notReferrersIndex(b, subject, err); what != "" {
		// distribution-spec: when the tag schema "does not return a valid image index, the
		// client SHOULD assume there are no referrers to the manifest".
		log := logrus.WithFields(logrus.Fields{"registry": c.host, "tag": tag})
		if _, warned := c.notIndexTags.LoadOrStore(tag, true); warned {
			log.Debugf("%s holds %s; no referrers", tag, what)
			return []imgspecv1.Descriptor{}, nil
		}
		log.Warnf("%s: tag %s holds %s, not a referrers index; reading it as no referrers", c.name(), tag, what)
		return []imgspecv1.Descriptor{}, nil
	}
	return descs, nil
}

// notReferrersIndex says what a manifest b tagged with subject's tag-schema tag is when it is
// no referrers index of subject (parseErr is what parsing it as one said), else "". cosign
// copy (v2.6.5) tags every manifest it copies with this very tag, so it often names the
// subject itself, which for an index parses as one.
func notReferrersIndex(b []byte, subject digest.Digest, parseErr error) string {
	if subject.Algorithm().FromBytes(b) == subject {
		return "the manifest " + subject.String() + " itself (as cosign copy tags the manifests it copies)"
	}
	if parseErr != nil {
		return fmt.Sprintf("something else (%v)", parseErr)
	}
	return ""
}

// referrersAPI lists referrers through GET /v2/<name>/referrers/<digest>, following Link
// pages; supported is false when the registry does not serve the API (404, 405, 501), which
// the client then remembers.
func (c *client) referrersAPI(ctx context.Context, subject digest.Digest, scopes []scope) (descs []imgspecv1.Descriptor, supported bool, err error) {
	if c.noReferrersAPI.Load() {
		return nil, false, nil
	}
	hdr := http.Header{"Accept": {imgspecv1.MediaTypeImageIndex}}
	req := request{method: http.MethodGet, path: "/v2/" + c.repo + "/referrers/" + subject.String(), header: hdr, scopes: scopes}
	budget := pageBudget{what: "referrers list", maxBytes: maxReferrersListSize, maxItems: maxReferrers}
	listed := map[digest.Digest]bool{}
	for page := 0; page < maxReferrersPages; page++ {
		resp, err := c.do(ctx, req)
		if err != nil {
			return nil, false, err
		}
		// A 200 with an HTML page or the like is a proxy or repository manager answering a
		// path it does not know, as oras and regclient take it.
		noAPI := resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented ||
			resp.StatusCode == http.StatusOK && !referrersMIMEType(resp.Header.Get("Content-Type"))
		switch {
		case page == 0 && noAPI:
			drain(resp)
			c.noReferrersAPI.Store(true)
			logrus.WithFields(logrus.Fields{"registry": c.host, "status": resp.StatusCode, "type": truncate(resp.Header.Get("Content-Type"))}).Debug("no referrers API: reading the referrers tag schema")
			return nil, false, nil
		case page == 0 && resp.StatusCode == http.StatusBadRequest:
			// Registries without the API that route the path elsewhere refuse it with 400 (so
			// does Quay for a subject it does not hold): the tag schema answers for this
			// subject, and the API is asked again for the next.
			drain(resp)
			logrus.WithFields(logrus.Fields{"registry": c.host, "subject": subject}).Debug("referrers API refused the request (400): reading the referrers tag schema")
			return nil, false, nil
		case resp.StatusCode == http.StatusOK:
		default:
			return nil, false, c.statusError(resp, kindOther)
		}
		body, err := readMetadata(resp, iolimits.MaxManifestBodySize)
		resp.Body.Close()
		if err != nil {
			return nil, false, errors.Wrap(err, "reading referrers response")
		}
		list, err := manifest.ParseReferrersIndex(body)
		if err != nil {
			return nil, false, errors.Wrap(err, "reading referrers response")
		}
		if err := budget.add(len(body), len(list)); err != nil {
			return nil, false, err
		}
		for _, d := range list {
			if !listed[d.Digest] {
				listed[d.Digest] = true
				descs = append(descs, d)
			}
		}
		next, err := c.nextLink(resp)
		if err != nil {
			return nil, false, err
		}
		if next == nil {
			if descs == nil {
				descs = []imgspecv1.Descriptor{}
			}
			return descs, true, nil
		}
		req = request{method: http.MethodGet, url: next, header: hdr, scopes: scopes}
	}
	return nil, false, errors.Errorf("more than %d pages of referrers", maxReferrersPages)
}

// referrersMIMEType reports whether contentType may be a referrers API answer: an OCI image
// index, or JSON of some kind (missing types are read too).
func referrersMIMEType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if contentType == "" || err != nil {
		return contentType == ""
	}
	return mt == imgspecv1.MediaTypeImageIndex || mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// getReferrersIndex GETs the manifest tagged tag and its ETag; a missing tag is (nil, "", nil).
func (c *client) getReferrersIndex(ctx context.Context, tag string, scopes []scope) ([]byte, string, error) {
	hdr := http.Header{"Accept": manifest.SupportedMIMETypes()}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: manifestPath(c.repo, tag), header: hdr, scopes: scopes})
	if err != nil {
		return nil, "", err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		drain(resp)
		return nil, "", nil
	default:
		return nil, "", c.statusError(resp, kindManifest)
	}
	defer resp.Body.Close()
	body, err := readMetadata(resp, iolimits.MaxManifestBodySize)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading referrers index %s", tag)
	}
	if d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil {
		if err := manifest.CheckDigest(body, d, -1); err != nil {
			return nil, "", errors.Wrapf(err, "reading referrers index %s", tag)
		}
	}
	return body, resp.Header.Get("ETag"), nil
}

// PutRelatedManifest implements types.RelatedDestination: the manifest is pushed by digest
// now and tagged at Commit. When the tag points at it already, nothing is pushed.
func (d *destination) PutRelatedManifest(ctx context.Context, body []byte, mimeType string, opts types.PutRelatedOptions) error {
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(body)
	}
	dg, err := manifest.Digest(body)
	if err != nil {
		return errors.Wrapf(err, "computing manifest digest for %s", types.ImageName(d.ref))
	}
	if opts.Tag != "" {
		if !anchoredTagRE().MatchString(opts.Tag) {
			return errors.Wrapf(types.ErrUsage, "invalid tag %q for manifest %s", opts.Tag, dg)
		}
		at, err := d.tagPointsAt(ctx, opts.Tag, dg, http.Header{"Accept": manifest.SupportedMIMETypes()})
		if err != nil {
			return err
		}
		if at {
			logrus.WithFields(logrus.Fields{"tag": opts.Tag, "digest": dg}).Debug("tag already points at the manifest; not pushing it")
			return nil
		}
	}
	hdr, err := d.c.putManifest(ctx, dg.String(), body, mimeType, nil, d.scopes)
	if err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", dg, d.c.name())
	}
	d.noteReferrer(body, mimeType, hdr)
	if opts.Tag != "" {
		d.related.mu.Lock()
		d.related.tags = append(d.related.tags, relatedTag{tag: opts.Tag, body: body, mimeType: mimeType})
		d.related.mu.Unlock()
	}
	return nil
}

// noteReferrer records a pushed manifest with a subject for the subject's referrers index,
// unless the registry said with OCI-Subject that it processed the subject itself.
func (d *destination) noteReferrer(body []byte, mimeType string, hdr http.Header) {
	a, err := manifest.ArtifactOf(body)
	if err != nil || a.Subject == nil {
		return // no subject (an unreadable one was refused by the copy's parse already)
	}
	log := logrus.WithFields(logrus.Fields{"subject": a.Subject.Digest})
	if hdr.Get("OCI-Subject") == a.Subject.Digest.String() {
		log.Debug("registry processed the subject (OCI-Subject); no referrers index to update")
		return
	}
	desc, err := manifest.ReferrerDescriptor(body, mimeType)
	if err != nil {
		log.Debugf("not recording referrer: %v", err)
		return
	}
	log.WithField("digest", desc.Digest).Debug("no OCI-Subject from the registry: the referrers index will be updated at Commit")
	d.related.addReferrer(a.Subject.Digest, desc)
}

// commitRelated updates the referrers indexes and applies the tags of related manifests.
func (d *destination) commitRelated(ctx context.Context) error {
	d.related.mu.Lock()
	subjects, referrers, tags := d.related.subjects, d.related.referrers, d.related.tags
	d.related.mu.Unlock()
	for _, s := range subjects {
		if err := d.updateReferrersIndex(ctx, s, referrers[s]); err != nil {
			return errors.Wrapf(err, "recording referrers of %s", s)
		}
	}
	for _, t := range tags {
		if _, err := d.c.putManifest(ctx, t.tag, t.body, t.mimeType, nil, d.scopes); err != nil {
			return errors.Wrapf(err, "tagging %s:%s", d.c.name(), t.tag)
		}
	}
	return nil
}

// updateReferrersIndex adds add to the tag-schema index of subject without losing entries
// other writers add at the same time. Each round reads the index, and when an entry of add is
// missing writes the merged index with If-Match on the ETag it read, so that a registry that
// honours it refuses the write (412) if the index changed in between; the next round then
// merges again. A registry that ignores If-Match (CNCF distribution does) may still let a
// concurrent writer overwrite us with an index it read before our write, so every write is
// followed by another round that reads the index back and merges again when our entries are
// gone. That read waits first (settleDelay): the other writer's stale write may still be on
// its way when ours is answered, and a read-back at once would miss it.
func (d *destination) updateReferrersIndex(ctx context.Context, subject digest.Digest, add []imgspecv1.Descriptor) error {
	tag := manifest.FallbackTag(subject)
	log := logrus.WithFields(logrus.Fields{"subject": subject, "tag": tag})
	conditional, refusedETag := true, ""
	var settle time.Duration
	for round := 0; round < maxIndexUpdates; round++ {
		if err := sleep(ctx, settle); err != nil {
			return err
		}
		start := time.Now()
		cur, etag, err := d.c.getReferrersIndex(ctx, tag, d.scopes)
		if err != nil {
			return err
		}
		var next []byte
		var changed bool
		if what := notReferrersIndex(cur, subject, nil); cur != nil && what != "" {
			err = errors.Wrapf(types.ErrInvalidManifest, "it holds %s", what)
		} else {
			next, changed, err = manifest.AddReferrers(cur, add)
		}
		if err != nil { // spec: "SHOULD report a failure", do not overwrite
			return errors.Wrapf(err, "tag %s holds no referrers index, so the referrers cannot be listed there (remove the tag, or copy to a registry with the referrers API)", tag)
		}
		if !changed {
			log.Debug("referrers index lists every referrer")
			return nil
		}
		hdr := http.Header{}
		if conditional && etag != "" {
			hdr.Set("If-Match", etag)
		}
		_, err = d.c.putManifest(ctx, tag, next, imgspecv1.MediaTypeImageIndex, hdr, d.scopes)
		if re, ok := asRegistryError(err); ok && re.status == http.StatusPreconditionFailed {
			if etag == refusedETag { // refused twice for an unchanged index: the registry's If-Match is broken
				conditional = false
			}
			refusedETag = etag
			log.Debug("referrers index changed since it was read (412); merging again")
			continue
		}
		if err != nil {
			return errors.Wrapf(err, "writing referrers index %s", tag)
		}
		settle = settleDelay(time.Since(start))
		log.WithFields(logrus.Fields{"entries": len(add), "wait": settle}).Debug("referrers index written; reading it back")
	}
	return errors.Errorf("referrers index %s kept changing under concurrent writers; gave up after %d rounds", tag, maxIndexUpdates)
}
