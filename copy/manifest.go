package copy

import (
	"context"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// getManifest reads a manifest from the source: the top level (instance nil) or an instance,
// whose bytes must match its digest.
func (c *copier) getManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	what := "manifest"
	if instance != nil {
		what = "manifest " + instance.String()
	}
	unlock := c.lockManifests(c.srcProps.ConcurrentManifests)
	b, mt, err := c.src.GetManifest(ctx, instance)
	unlock()
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading %s from %s", what, types.ImageName(c.srcRef))
	}
	if mt = manifestMIMEType(b, mt); mt == "" {
		return nil, "", errors.Wrapf(manifest.ErrUnsupportedMIMEType, "reading %s from %s: unknown manifest type", what, types.ImageName(c.srcRef))
	}
	if instance != nil {
		if err := manifest.CheckDigest(b, *instance, -1); err != nil {
			return nil, "", errors.Wrapf(err, "reading %s from %s", what, types.ImageName(c.srcRef))
		}
	}
	return b, mt, nil
}

// manifestMIMEType returns the manifest type a source gave, without parameters, or when it
// gave none the type b looks like ("" when unknown).
func manifestMIMEType(b []byte, mt string) string {
	mt, _, _ = strings.Cut(mt, ";")
	if mt = strings.TrimSpace(mt); mt == "" {
		mt = manifest.GuessMIMEType(b)
	}
	return mt
}

// lockManifests takes manifestMu for a manifest call, unless the side it goes to says
// ConcurrentManifests (concurrent); the function it returns releases it.
func (c *copier) lockManifests(concurrent bool) (unlock func()) {
	if concurrent {
		return func() {}
	}
	c.manifestMu.Lock()
	return c.manifestMu.Unlock
}
