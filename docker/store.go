package docker

import (
	"strings"

	distref "github.com/distribution/reference"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

var _ types.StoreTransport = dockerTransport{}

// storeReference is a registry, or a repository prefix on it, holding many images:
// docker://HOST[/PREFIX].
type storeReference struct {
	host   string // as written: "registry.example:5000", "docker.io"
	prefix string // repository path prefix without slashes at either end, or ""
}

// ParseStoreReference implements types.StoreTransport: "//HOST[/PREFIX]", e.g.
// "//registry.example:5000/mirror". HOST must look like a registry host (contain a dot or a
// port, or be localhost), so that "//busybox" is not mistaken for one.
func (dockerTransport) ParseStoreReference(s string) (types.StoreReference, error) {
	rest, ok := strings.CutPrefix(s, "//")
	if !ok {
		return nil, errors.Wrapf(types.ErrUsage, "docker store %q does not start with \"//\"", s)
	}
	host, prefix, _ := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	if host == "" || (!strings.ContainsAny(host, ".:") && host != "localhost") {
		return nil, errors.Wrapf(types.ErrUsage, "docker store %q: %q is not a registry host (want HOST[:PORT][/PREFIX])", s, host)
	}
	probe := host + "/x"
	if prefix != "" {
		probe = host + "/" + prefix + "/x"
	}
	named, err := distref.ParseNormalizedNamed(probe)
	if err != nil || distref.Domain(named) != normalizedDomain(host) || !distref.IsNameOnly(named) {
		return nil, errors.Wrapf(types.ErrUsage, "docker store %q: invalid registry host or repository prefix", s)
	}
	return storeReference{host: host, prefix: prefix}, nil
}

// Transport implements types.StoreReference.
func (s storeReference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.StoreReference.
func (s storeReference) StringWithinTransport() string {
	if s.prefix == "" {
		return "//" + s.host
	}
	return "//" + s.host + "/" + s.prefix
}

// ImageReference implements types.StoreReference: "team/app:1" in docker://HOST/PREFIX is
// docker://HOST/PREFIX/team/app:1. A name without tag or digest names the repository (its
// reference opens :latest and lists every tag). On Docker Hub a one-element path gets
// "library/" as everywhere else.
func (s storeReference) ImageReference(name string) (types.ImageReference, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return nil, errors.Wrapf(types.ErrUsage, "invalid image name %q in %s", name, s.name())
	}
	full := s.host + "/" + name
	if s.prefix != "" {
		full = s.host + "/" + s.prefix + "/" + name
	}
	named, err := distref.ParseNormalizedNamed(full)
	if err != nil || distref.Domain(named) != normalizedDomain(s.host) {
		return nil, errors.Wrapf(types.ErrUsage, "invalid image name %q in %s: %v", name, s.name(), err)
	}
	return NewReference(named)
}

// normalizedDomain is the domain distref gives a name on host ("index.docker.io" is Docker Hub).
func normalizedDomain(host string) string {
	if host == "index.docker.io" {
		return dockerHubDomain
	}
	return host
}

// name renders the store as users type it, for messages.
func (s storeReference) name() string { return transportName + ":" + s.StringWithinTransport() }
