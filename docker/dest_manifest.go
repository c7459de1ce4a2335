package docker

import (
	"context"
	"net/http"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// PutManifest implements types.ImageDestination. Manifests are pushed by digest; the
// top-level one is tagged in Commit, or pushed by tag at once after NameOnPut. A registry
// refusing the type (MANIFEST_INVALID, UNSUPPORTED, 415) yields
// types.ManifestTypeRejectedError so the copy can try another type.
func (d *destination) PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error {
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(body)
	}
	dg, err := manifest.Digest(body)
	if err != nil {
		return errors.Wrapf(err, "computing manifest digest for %s", types.ImageName(d.ref))
	}
	want := d.ref.digest()
	if instance != nil {
		want = *instance
	}
	if want != "" {
		if err := manifest.CheckDigest(body, want, -1); err != nil {
			return errors.Wrapf(err, "writing manifest to %s", types.ImageName(d.ref))
		}
		dg = want
	}
	if instance == nil && d.namesOnPut(body) {
		return d.putTagged(ctx, body, mimeType, dg)
	}
	d.mu.Lock()
	present := d.present == dg
	d.mu.Unlock()
	if present {
		logrus.WithFields(logrus.Fields{"digest": dg}).Debug("manifest already stored; not pushing it by digest again")
	} else if hdr, err := d.c.putManifest(ctx, dg.String(), body, mimeType, nil, d.scopes); err != nil {
		return errors.Wrapf(explainForeignRefusal(err, body, mimeType), "writing manifest %s to %s", dg, types.ImageName(d.ref))
	} else {
		d.noteReferrer(body, mimeType, hdr)
	}
	if instance == nil {
		d.mu.Lock()
		d.topBody, d.topMIME, d.topDigest = body, mimeType, dg
		d.mu.Unlock()
	}
	return nil
}

// NameOnPut implements types.ManifestNamer.
func (d *destination) NameOnPut() {
	d.mu.Lock()
	d.nameOnPut = true
	d.mu.Unlock()
}

// namesOnPut reports whether the top-level manifest body is pushed by tag in PutManifest: after
// NameOnPut, for a reference with a tag, and unless body has a subject (a referrer whose
// registry does not process subjects has its referrers index updated in Commit, before the
// tag moves).
func (d *destination) namesOnPut(body []byte) bool {
	d.mu.Lock()
	on := d.nameOnPut
	d.mu.Unlock()
	if !on || d.ref.tag() == "" {
		return false
	}
	a, err := manifest.ArtifactOf(body)
	return err == nil && a.Subject == nil
}

// putTagged pushes the top-level manifest dg by tag, unless the tag points at it already, and
// keeps it for Commit, which then has nothing left to push.
func (d *destination) putTagged(ctx context.Context, body []byte, mimeType string, dg digest.Digest) error {
	d.mu.Lock()
	tagged := d.tagged == dg
	d.mu.Unlock()
	tag := d.ref.tag()
	if tagged {
		logrus.WithFields(logrus.Fields{"tag": tag, "digest": dg}).Debug("tag already points at the manifest; not tagging again")
	} else if _, err := d.c.putManifest(ctx, tag, body, mimeType, nil, d.scopes); err != nil {
		return errors.Wrapf(explainForeignRefusal(err, body, mimeType), "writing manifest %s to %s", dg, types.ImageName(d.ref))
	}
	d.mu.Lock()
	d.topBody, d.topMIME, d.topDigest, d.tagged = body, mimeType, dg, dg
	d.mu.Unlock()
	return nil
}

// digestHEADDelay is how long HasManifest waits for the tag's answer before it also asks for
// the digest: over a link whose round trip is longer, a new image costs one round trip of
// checks instead of two; on loopback or a LAN the tag answers first and a warm re-copy makes
// one request (asking both at once there cost a warm re-copy 2–3 ms of its 45, issue 18).
const digestHEADDelay = 5 * time.Millisecond

// HasManifest implements types.ManifestChecker with HEADs of the manifest in this
// repository: of the tag, whose Docker-Content-Digest tells whether it points at dg already
// (then nothing is pushed, not even the tag, as crane does), and by digest, asked at the same
// time when the tag takes longer than digestHEADDelay to answer, else after it. A registry
// accepts a manifest only when the blobs and child manifests it references exist in the
// repository, so a stored manifest is complete (the assumption crane and regctl make too). A
// manifest found is not pushed by digest again in PutManifest; Commit still tags it unless the
// tag pointed at it already. A failed request for the tag (refused credentials, say) is the
// answer, whatever the HEAD by digest says.
func (d *destination) HasManifest(ctx context.Context, dg digest.Digest) (bool, error) {
	if err := dg.Validate(); err != nil {
		return false, errors.Wrapf(err, "invalid manifest digest %q", dg)
	}
	hdr := http.Header{"Accept": manifest.SupportedMIMETypes()}
	tag := d.ref.tag()
	if tag == "" || d.ref.digest() != "" {
		return d.hasDigest(ctx, dg, hdr)
	}
	type answer struct {
		has bool
		err error
	}
	byDigest := make(chan answer, 1)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(d.digestDelay, func() {
		has, err := d.hasDigest(dctx, dg, hdr)
		byDigest <- answer{has, err}
	})
	at, err := d.tagPointsAt(ctx, tag, dg, hdr)
	asked := !timer.Stop() // the HEAD by digest went out (or is going out)
	if asked && (err != nil || at) {
		cancel()
		<-byDigest
	}
	switch {
	case err != nil:
		return false, err
	case at:
		d.mu.Lock()
		d.present, d.tagged = dg, dg
		d.mu.Unlock()
		return true, nil
	case !asked:
		return d.hasDigest(ctx, dg, hdr)
	}
	a := <-byDigest
	return a.has, a.err
}

// hasDigest is HasManifest's HEAD by digest.
func (d *destination) hasDigest(ctx context.Context, dg digest.Digest, hdr http.Header) (bool, error) {
	resp, err := d.c.do(ctx, request{method: http.MethodHead, path: manifestPath(d.ref.repo(), dg.String()), header: hdr, scopes: d.scopes})
	if err != nil {
		return false, errors.Wrapf(err, "checking manifest %s in %s", dg, types.ImageName(d.ref))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		drain(resp)
		d.mu.Lock()
		d.present = dg
		d.mu.Unlock()
		return true, nil
	case http.StatusNotFound:
		drain(resp)
		return false, nil
	}
	return false, errors.Wrapf(d.c.statusError(resp, kindManifest), "checking manifest %s in %s", dg, types.ImageName(d.ref))
}

// tagPointsAt reports whether tag is known to point at the manifest dg. No such tag, no
// Docker-Content-Digest or another digest is false: the HEAD by digest answers then.
func (d *destination) tagPointsAt(ctx context.Context, tag string, dg digest.Digest, hdr http.Header) (bool, error) {
	resp, err := d.c.do(ctx, request{method: http.MethodHead, path: manifestPath(d.ref.repo(), tag), header: hdr, scopes: d.scopes})
	if err != nil {
		return false, errors.Wrapf(err, "checking tag %s in %s", tag, types.ImageName(d.ref))
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNotFound:
		drain(resp)
		return resp.StatusCode == http.StatusOK && resp.Header.Get("Docker-Content-Digest") == dg.String(), nil
	}
	return false, errors.Wrapf(d.c.statusError(resp, kindManifest), "checking tag %s in %s", tag, types.ImageName(d.ref))
}

// putManifest PUTs a manifest with the extra request headers hdr (may be nil) and returns the
// response headers (OCI-Subject tells whether the registry processed a subject).
func (c *client) putManifest(ctx context.Context, ref string, body []byte, mimeType string, hdr http.Header, scopes []scope) (http.Header, error) {
	hdr = hdr.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Content-Type", mimeType)
	resp, err := c.do(ctx, request{method: http.MethodPut, path: manifestPath(c.repo, ref), header: hdr, body: body, scopes: scopes})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
		drain(resp)
		if err := checkStoredDigest(resp.Header.Get("Docker-Content-Digest"), body); err != nil {
			return nil, err
		}
		return resp.Header, nil
	}
	status := resp.StatusCode
	err = c.statusError(resp, kindManifest)
	if re, ok := asRegistryError(err); ok && digest.Digest(ref).Validate() != nil {
		re.markImmutableTag(ref)
	}
	if re, ok := asRegistryError(err); status == http.StatusUnsupportedMediaType ||
		(ok && status == http.StatusBadRequest && re.hasCode(codeManifestInvalid, codeUnsupported, codeManifestUnverified)) ||
		(ok && schema1Refused(mimeType, status, re)) {
		return nil, types.ManifestTypeRejectedError{MIMEType: mimeType, Err: err}
	}
	return nil, err
}

// checkStoredDigest checks the Docker-Content-Digest of a manifest PUT's answer (h, may be
// empty) against body: a registry that answers with another digest stored other bytes than
// those sent (it rewrote the manifest), and the destination would not hold the image copied.
// A header we cannot read, or in an algorithm we lack, is no answer (as regclient does).
func checkStoredDigest(h string, body []byte) error {
	got, err := digest.Parse(strings.TrimSpace(h))
	if err != nil || !got.Algorithm().Available() {
		return nil
	}
	ok, err := manifest.MatchesDigest(body, got)
	if err != nil || ok {
		return nil
	}
	want, _ := manifest.Digest(body)
	return errors.Wrapf(types.ErrDigestMismatch, "the registry answered the manifest %s with Docker-Content-Digest %s: it stored other bytes than those sent", want, got)
}

// schema1Refused reports whether a registry answered the push of a schema1 manifest with
// CNCF distribution 2.x's refusal: with schema1 support off (its default), it answers 500
// UNKNOWN, the reason ("manifest schema v1 unsupported") only in its own log. It is seen
// after the retries of a 500 are spent, so a transient failure does not pass for it.
func schema1Refused(mimeType string, status int, re *registryError) bool {
	return manifest.IsSchema1Type(mimeType) && status == http.StatusInternalServerError && re.hasCode(codeUnknown)
}

// Commit implements types.ImageDestination: it tags the top-level manifest.
func (d *destination) Commit(ctx context.Context, _ types.CommitOptions) error {
	d.mu.Lock()
	body, mimeType := d.topBody, d.topMIME
	d.mu.Unlock()
	if body == nil {
		return errors.Errorf("committing %s: no manifest was written", types.ImageName(d.ref))
	}
	if err := d.commitRelated(ctx); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	tag := d.ref.tag()
	if tag == "" {
		return nil // a digest reference: PutManifest pushed it by digest already
	}
	d.mu.Lock()
	tagged := d.tagged != "" && d.tagged == d.topDigest
	d.mu.Unlock()
	if tagged {
		logrus.WithFields(logrus.Fields{"tag": tag, "digest": d.topDigest}).Debug("tag already points at the manifest; not tagging again")
		return nil
	}
	if _, err := d.c.putManifest(ctx, tag, body, mimeType, nil, d.scopes); err != nil {
		return errors.Wrapf(err, "tagging %s", types.ImageName(d.ref))
	}
	return nil
}
