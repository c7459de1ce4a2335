package docker

import (
	"context"
	"net/http"

	distref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// dockerHubDomain is how references name Docker Hub; its API lives on dockerHubAPIHost.
const (
	dockerHubDomain  = "docker.io"
	dockerHubAPIHost = "registry-1.docker.io"
)

// reference is a docker:// image reference: a normalized name with a tag, a digest or both
// (a bare name means :latest).
type reference struct {
	named distref.Named
	// implicitTag is set when the name was written without tag or digest: the reference then
	// opens :latest, but lists every tag of the repository (types.ImageLister).
	implicitTag bool
}

var (
	_ types.ImageReference = reference{}
	_ types.ImageDeleter   = reference{}
	_ types.TagLister      = reference{}
)

// NewReference returns a docker reference for a normalized name (as returned by
// distref.ParseNormalizedNamed). A name without tag or digest gets the tag "latest".
func NewReference(named distref.Named) (types.ImageReference, error) {
	if named == nil {
		return nil, types.UsageError{Err: errors.New("docker reference needs a name")}
	}
	implicit := distref.IsNameOnly(named)
	if implicit {
		named = distref.TagNameOnly(named)
	}
	if _, ok := named.(distref.NamedTagged); !ok {
		if _, ok := named.(distref.Canonical); !ok {
			return nil, types.UsageError{Err: errors.Errorf("docker reference %q has neither tag nor digest", named.String())}
		}
	}
	return reference{named: named, implicitTag: implicit}, nil
}

// Transport implements types.ImageReference.
func (r reference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.ImageReference.
func (r reference) StringWithinTransport() string {
	familiar := distref.FamiliarString(r.named)
	if hostOnly(familiar, r.named) {
		return "//" + r.named.String() // docker.io/library/quay.io, which reads back as it is
	}
	return "//" + familiar
}

// DockerReference implements types.ImageReference.
func (r reference) DockerReference() distref.Named { return r.named }

// NewImageSource implements types.ImageReference.
func (r reference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return newImageSource(ctx, sys, r)
}

// NewImageDestination implements types.ImageReference.
func (r reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	return newImageDestination(ctx, sys, r)
}

// registry returns the registry as the reference names it ("docker.io", "host:port").
func (r reference) registry() string { return distref.Domain(r.named) }

// apiHost returns the host to contact.
func (r reference) apiHost() string {
	if d := r.registry(); d != dockerHubDomain {
		return d
	}
	return dockerHubAPIHost
}

// repo returns the repository path ("library/busybox").
func (r reference) repo() string { return distref.Path(r.named) }

func (r reference) tag() string {
	if t, ok := r.named.(distref.NamedTagged); ok {
		return t.Tag()
	}
	return ""
}

func (r reference) digest() digest.Digest {
	if c, ok := r.named.(distref.Canonical); ok {
		return c.Digest()
	}
	return ""
}

// manifestRef returns what to GET for the top-level manifest: the digest when there is
// one, else the tag.
func (r reference) manifestRef() string {
	if d := r.digest(); d != "" {
		return d.String()
	}
	return r.tag()
}

func (r reference) newClient(sys *types.SystemContext) (*client, error) {
	return newClient(sys, r.registry(), r.apiHost(), r.repo())
}

// DeleteImage implements types.ImageDeleter: it resolves a tag to its manifest digest and
// deletes the manifest by digest (registries delete by digest only), which also removes every
// tag pointing to it.
func (r reference) DeleteImage(ctx context.Context, sys *types.SystemContext) error {
	c, err := r.newClient(sys)
	if err != nil {
		return err
	}
	scopes := []scope{{repo: r.repo(), actions: "*"}}
	d := r.digest()
	if d == "" {
		if d, err = c.resolveDigest(ctx, r.tag(), scopes); err != nil {
			return errors.Wrapf(err, "resolving %s", types.ImageName(r))
		}
	}
	resp, err := c.do(ctx, request{method: http.MethodDelete, path: manifestPath(r.repo(), d.String()), scopes: scopes})
	if err != nil {
		return errors.Wrapf(err, "deleting %s", types.ImageName(r))
	}
	if resp.StatusCode == http.StatusMethodNotAllowed {
		// CNCF distribution answers so unless storage.delete.enabled is set; Docker Hub,
		// GHCR and others delete only through their own web API.
		return errors.Wrapf(c.statusError(resp, kindManifest), "deleting %s: the registry does not allow deleting images through the registry API", types.ImageName(r))
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return errors.Wrapf(c.statusError(resp, kindManifest), "deleting %s", types.ImageName(r))
	}
	drain(resp)
	return nil
}

// resolveDigest returns the digest of the manifest tag points to: Docker-Content-Digest of a
// HEAD, else the digest of the GET body. A registry that refuses HEAD of manifests (Nexus and
// some proxies answer 400, 405 or 501) is asked with a GET too, as containerd and crane do.
func (c *client) resolveDigest(ctx context.Context, tag string, scopes []scope) (digest.Digest, error) {
	hdr := http.Header{"Accept": manifest.SupportedMIMETypes()}
	resp, err := c.do(ctx, request{method: http.MethodHead, path: manifestPath(c.repo, tag), header: hdr, scopes: scopes})
	if err != nil {
		return "", err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		drain(resp)
		if d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil {
			return d, nil
		}
	case headRefused(resp.StatusCode):
		drain(resp)
		logrus.WithFields(logrus.Fields{"registry": c.host, "status": resp.StatusCode}).Debug("registry refused HEAD of a manifest; asking with GET")
	default:
		return "", c.statusError(resp, kindManifest)
	}
	body, _, err := c.getManifest(ctx, tag, scopes)
	if err != nil {
		return "", err
	}
	return manifest.Digest(body)
}

// ListTags implements types.TagLister, following Link headers across pages.
func (r reference) ListTags(ctx context.Context, sys *types.SystemContext) ([]string, error) {
	c, err := r.newClient(sys)
	if err != nil {
		return nil, err
	}
	c.pullOnly = true
	tags, err := c.listTags(ctx)
	if err != nil {
		return nil, errors.Wrapf(err, "listing tags of %s", c.name())
	}
	return tags, nil
}

// headRefused reports whether status is a registry's refusal of the HEAD method itself, not an
// answer about the object: the same question asked with GET may succeed.
func headRefused(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented
}

func manifestPath(repo, ref string) string { return "/v2/" + repo + "/manifests/" + ref }

func blobPath(repo string, d digest.Digest) string { return "/v2/" + repo + "/blobs/" + d.String() }
