package docker

import (
	"context"
	"net/http"
	"net/url"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/types"
)

// cancelTimeout bounds best-effort cleanup requests.
const cancelTimeout = 30 * time.Second

// TryReusingBlob implements types.ImageDestination: a HEAD in this repository, then a
// cross-repository mount from each other repository of this registry where the cache (or
// the source reference) says the blob is. A mount the registry answers with an upload
// session (202) leaves the session to the next upload, makes the cache forget that location
// (types.BlobLocationForgetter), and the next candidate is tried.
// With opts.RequiredCompression, the requested blob is neither checked nor mounted unless it
// has that compression, and only substitutes the cache records with that compressor are
// tried.
func (d *destination) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	if info.Digest == "" {
		return types.ReusedBlob{}, false, nil
	}
	if err := info.Digest.Validate(); err != nil {
		return types.ReusedBlob{}, false, errors.Wrapf(err, "invalid digest %q", info.Digest)
	}
	if opts.AcceptsOriginal() {
		size, found, err := d.blobExists(ctx, info.Digest)
		if err != nil {
			return types.ReusedBlob{}, false, errors.Wrapf(err, "checking blob %s in %s", info.Digest, types.ImageName(d.ref))
		}
		if found {
			d.recordLocation(opts.Cache, info.Digest)
			logrus.WithFields(logrus.Fields{"digest": info.Digest}).Debug("blob already present")
			return types.ReusedBlob{Info: withDigest(info, info.Digest, size)}, true, nil
		}
	} else {
		logrus.WithFields(logrus.Fields{"digest": info.Digest, "compression": opts.OriginalCompression, "required": opts.RequiredCompression}).
			Debug("not reusing the blob itself: another compression is required")
	}
	for _, cand := range d.mountCandidates(info.Digest, opts) {
		reused, ok := d.tryCandidate(ctx, info, cand, opts.Cache)
		if ok {
			return reused, true, nil
		}
	}
	return types.ReusedBlob{}, false, nil
}

// candidate is a place in this registry where a blob (or a substitute) may be.
type candidate struct {
	digest digest.Digest
	repo   string
}

func (d *destination) mountCandidates(dg digest.Digest, opts types.ReuseOptions) []candidate {
	var out []candidate
	seen := map[candidate]bool{{digest: dg, repo: d.ref.repo()}: true} // already checked
	add := func(c candidate) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if src, ok := opts.SourceReference.(reference); ok && src.registry() == d.ref.registry() && opts.AcceptsOriginal() {
		add(candidate{digest: dg, repo: src.repo()})
	}
	if opts.Cache != nil {
		for _, c := range opts.Cache.CandidateLocations(transportName, d.cacheScope(), dg, opts.CanSubstitute) {
			if !candidateAcceptable(dg, c, opts) {
				continue
			}
			add(candidate{digest: c.Digest, repo: c.Location.Opaque})
		}
	}
	return out
}

// candidateAcceptable reports whether a cache candidate for dg may be reused under opts: the
// blob itself when its compression is acceptable, another blob only as an allowed
// substitute with the required compression.
func candidateAcceptable(dg digest.Digest, c types.BICReplacementCandidate, opts types.ReuseOptions) bool {
	if c.Digest == dg {
		return opts.AcceptsOriginal()
	}
	return opts.CanSubstitute && opts.AcceptsCompression(c.CompressorName)
}

// tryCandidate checks a substitute in this repository, or mounts from another repository.
// Failures only mean "not reused".
func (d *destination) tryCandidate(ctx context.Context, info types.BlobInfo, cand candidate, cache types.BlobInfoCache) (types.ReusedBlob, bool) {
	log := logrus.WithFields(logrus.Fields{"digest": cand.digest, "from": cand.repo})
	if cand.repo == d.ref.repo() {
		size, found, err := d.blobExists(ctx, cand.digest)
		if err != nil || !found {
			return types.ReusedBlob{}, false
		}
		log.Debug("substitute blob already present")
		return types.ReusedBlob{Info: withDigest(info, cand.digest, size)}, true
	}
	mounted, err := d.mount(ctx, cand)
	if err != nil || !mounted {
		log.WithField("error", err).Debug("cross-repository mount not done")
		if f, ok := cache.(types.BlobLocationForgetter); ok && err == nil {
			// Refused: the blob is no longer there (or never will be mounted from there).
			f.ForgetKnownLocation(transportName, d.cacheScope(), cand.digest, types.BICLocationReference{Opaque: cand.repo})
		}
		return types.ReusedBlob{}, false
	}
	size := info.Size
	if cand.digest != info.Digest || size < 0 {
		if s, found, err := d.blobExists(ctx, cand.digest); err == nil && found {
			size = s
		}
	}
	d.recordLocation(cache, cand.digest)
	log.Debug("blob mounted from another repository")
	return types.ReusedBlob{Info: withDigest(info, cand.digest, size), MountedFrom: cand.repo}, true
}

// mount asks the registry to mount cand into this repository: 201 means done, 202 means the
// registry opened an upload session instead, which the next upload uses (spareSession).
func (d *destination) mount(ctx context.Context, cand candidate) (bool, error) {
	scopes := append([]scope{{repo: cand.repo, actions: "pull"}}, d.scopes...)
	q := url.Values{"mount": {cand.digest.String()}, "from": {cand.repo}}
	resp, err := d.c.do(ctx, request{method: http.MethodPost, path: "/v2/" + d.ref.repo() + "/blobs/uploads/", query: q, scopes: scopes})
	if err != nil {
		return false, err
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		drain(resp)
		return true, nil
	case http.StatusAccepted:
		drain(resp)
		d.warnMountRefused(cand)
		if loc, err := locationOf(resp, nil); err == nil {
			d.addSpare(spareSession{loc: loc, minChunk: chunkMinOf(resp)})
		}
		return false, nil
	}
	return false, d.c.statusError(resp, kindBlob)
}

// blobExists HEADs a blob in this repository and returns its size (-1 if not sent). When the
// registry refuses the method (400, 405, 501), or redirects to storage that refuses the HEAD
// (a URL signed for GET only, or expired), the answer is unknown: the blob is uploaded then,
// which a registry holding it already accepts.
func (d *destination) blobExists(ctx context.Context, dg digest.Digest) (int64, bool, error) {
	resp, err := d.c.do(ctx, request{method: http.MethodHead, path: blobPath(d.ref.repo(), dg), scopes: d.scopes})
	if err != nil {
		return -1, false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		drain(resp)
		return resp.ContentLength, true, nil
	case http.StatusNotFound:
		drain(resp)
		return -1, false, nil
	}
	if _, redirected := redirectedAway(resp); redirected || headRefused(resp.StatusCode) {
		drain(resp)
		logrus.WithFields(logrus.Fields{"digest": dg, "status": resp.StatusCode, "redirected": redirected}).Debug("HEAD of the blob refused; uploading it")
		return -1, false, nil
	}
	return -1, false, d.c.statusError(resp, kindBlob)
}

func (d *destination) recordLocation(cache types.BlobInfoCache, dg digest.Digest) {
	if cache != nil {
		cache.RecordKnownLocation(transportName, d.cacheScope(), dg, types.BICLocationReference{Opaque: d.ref.repo()})
	}
}

// withDigest returns info describing the blob dg of size (unknown: -1 keeps info's size).
func withDigest(info types.BlobInfo, dg digest.Digest, size int64) types.BlobInfo {
	out := info
	if dg != info.Digest {
		out.Digest, out.Size = dg, -1
	}
	if size >= 0 {
		out.Size = size
	}
	return out
}

// warnMountRefused reports a refused cross-repository mount: a warning the first time for this
// destination (a stale cache refers to many blobs of a repository that is gone), debug after.
func (d *destination) warnMountRefused(cand candidate) {
	log := logrus.WithFields(logrus.Fields{"digest": cand.digest, "from": cand.repo})
	if d.mountRefusals.Add(1) == 1 {
		log.Warn("registry refused the cross-repository mount; uploading instead (further refusals are logged at debug level)")
		return
	}
	log.Debug("registry refused the cross-repository mount; uploading instead")
}
