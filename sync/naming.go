package sync

import (
	"bytes"
	"hash/fnv"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	gosync "sync"
	"text/template"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// RepoTemplate renames the destination repository of a source's images: a Go template over
// the source's .Registry ("quay.io", "localhost:5000"), .Repository (its whole path,
// "team/app") and .Name (the last path element, "app"), e.g. "mirror/{{.Name}}". The result
// is a repository path relative to the destination store.
type RepoTemplate struct {
	text string
	t    *template.Template
}

// repoVars are the fields a RepoTemplate sees.
type repoVars struct {
	Registry, Repository, Name string
}

// ParseRepoTemplate parses s, checking that it renders a repository path for a sample
// source; an error wraps types.ErrUsage.
func ParseRepoTemplate(s string) (*RepoTemplate, error) {
	t, err := template.New("destination").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, errors.Wrapf(types.ErrUsage, "destination template %q: %v", s, err)
	}
	rt := &RepoTemplate{text: s, t: t}
	if _, err := rt.render(repoVars{Registry: "registry.example", Repository: "team/app", Name: "app"}); err != nil {
		return nil, err
	}
	return rt, nil
}

func (rt *RepoTemplate) render(v repoVars) (string, error) {
	var b bytes.Buffer
	if err := rt.t.Execute(&b, v); err != nil {
		return "", errors.Wrapf(types.ErrUsage, "destination template %q: %v", rt.text, err)
	}
	repo := strings.Trim(b.String(), "/")
	if _, err := reference.ParseNormalizedNamed("registry.example/" + repo); err != nil || repo == "" || strings.ContainsAny(repo, ":@") {
		return "", errors.Wrapf(types.ErrUsage, "destination template %q gives %q, not a repository path (lower case, [a-z0-9._-] and /)", rt.text, repo)
	}
	return repo, nil
}

// String returns the template's text.
func (rt *RepoTemplate) String() string { return rt.text }

// anchoredTag matches a whole tag (reference.TagRegexp matches one anywhere in a string). It
// is compiled on first use, not at start-up (issue 18: every run paid for it).
var anchoredTag = gosync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^` + reference.TagRegexp.String() + `$`) })

// sourceName is an image's name at its source, as needed to name it in the destination.
type sourceName struct {
	registry string // "" when the stored name has none (a local store's "team/app:1")
	path     string // repository path; "" for an image stored under a bare tag ("v1")
	tag      string
	digest   digest.Digest
}

// parseSourceName splits a stored name: a registry reference ("quay.io/team/app:1",
// "docker.io/library/alpine:3"), a path in a local store ("team/app:1", kept as written,
// without docker.io/library/), or a bare tag ("v1", as skopeo writes OCI layouts). A digest
// is kept when there is no tag.
func parseSourceName(s string) (*sourceName, error) {
	if anchoredTag().MatchString(s) {
		return &sourceName{tag: s}, nil
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errors.Wrapf(types.ErrUsage, "image name %q: %v", s, err)
	}
	n := &sourceName{path: reference.Path(named)}
	if first, _, ok := strings.Cut(s, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		n.registry = reference.Domain(named)
	} else {
		n.path = s
		if i := strings.IndexAny(s, ":@"); i >= 0 {
			n.path = s[:i]
		}
	}
	if tagged, ok := named.(reference.Tagged); ok {
		n.tag = tagged.Tag()
	} else if c, ok := named.(reference.Canonical); ok {
		n.digest = c.Digest()
	}
	return n, nil
}

// templateHint says where a destination template is given, for messages that ask for one.
const templateHint = "(--dest-repo, or destination: in the config)"

// naming says how source images are named in the destination store.
type naming struct {
	template *RepoTemplate // nil: skopeo's naming
	scoped   bool          // keep the source registry and whole path (skopeo --scoped)
	suffix   string        // appended to tags (skopeo --append-suffix)
	// portColon keeps a scoped registry's port colon ("localhost:5000/app"), for dir: stores,
	// where skopeo sync --scoped writes it so; registry paths cannot hold it ("localhost_5000").
	portColon bool
}

// namingFor is how p names the images of src in its destination.
func (p *Plan) namingFor(src *Source) naming {
	return naming{template: src.Destination, scoped: p.opts.Scoped, suffix: p.opts.AppendSuffix, portColon: p.store.Transport().Name() == "dir"}
}

// destinationName returns the name of the image src in the destination store: "REPO:TAG",
// or "REPO@DIGEST" for an image selected by digest alone, or the bare "TAG" of an image
// stored under a bare tag. Like skopeo sync, REPO is the last
// element of the source repository path, or with scoped the source registry and path
// ("quay.io/team/app"; a port's colon becomes "_", which a registry path cannot hold, unless
// portColon); a template decides it instead when given.
func (n naming) destinationName(src *sourceName) (string, error) {
	var repo string
	switch {
	case n.template != nil:
		name := "" // an unnamed image (selected by digest) has none; path.Base would say "."
		if src.path != "" {
			name = path.Base(src.path)
		}
		r, err := n.template.render(repoVars{Registry: src.registry, Repository: src.path, Name: name})
		if err != nil {
			return "", err
		}
		repo = r
	case src.path == "" && src.tag != "":
		// A bare tag (a layout written by skopeo) stays a bare tag: layouts, archives and dir
		// stores take it as it is; a registry store refuses it (see expandSource).
		return src.tag + n.suffix, nil
	case src.path == "":
		return "", errors.Wrapf(types.ErrUsage, "the image is stored without a repository or tag: give its source a destination template "+templateHint)
	case n.scoped && src.registry != "" && n.portColon:
		repo = src.registry + "/" + src.path
	case n.scoped && src.registry != "":
		repo = scopedRegistry(src.registry) + "/" + src.path
	case n.scoped:
		repo = src.path
	default:
		repo = path.Base(src.path)
	}
	if src.tag != "" {
		return repo + ":" + src.tag + n.suffix, nil
	}
	if src.digest != "" {
		return repo + "@" + src.digest.String(), nil
	}
	return "", errors.Errorf("image %s has neither tag nor digest", repo)
}

// scopedRegistry returns registry ("quay.io", "localhost:5000", "[::1]:5000") as the first
// element of a repository path: a port's colon becomes "_", and an IPv6 address is written
// out in full with "-" between its groups ("[::1]:5000" → "0-0-0-0-0-0-0-1_5000"), since a
// path element must start and end with a letter or digit and cannot hold "[", ":" or "___".
func scopedRegistry(registry string) string {
	host, port := registry, ""
	if h, p, err := net.SplitHostPort(registry); err == nil {
		host, port = h, p
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.To4() == nil {
		groups := make([]string, 8)
		for i := range groups {
			groups[i] = strconv.FormatUint(uint64(ip[2*i])<<8|uint64(ip[2*i+1]), 16)
		}
		host = strings.Join(groups, "-")
	}
	if port != "" {
		return host + "_" + port
	}
	return host
}

// Shard is this process's share of a sync split between Count processes (--shard
// Index/Count): each image belongs to exactly one shard, chosen by a hash of its destination
// repository and tag, so that the shards are disjoint, cover the plan together and agree
// without talking to each other. The zero value is the whole sync.
type Shard struct {
	Index, Count int
}

// ParseShard parses "K/N" with 0 <= K < N.
func ParseShard(s string) (Shard, error) {
	k, n, ok := strings.Cut(s, "/")
	ki, err1 := strconv.Atoi(k)
	ni, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || ni < 1 || ki < 0 || ki >= ni {
		return Shard{}, errors.Wrapf(types.ErrUsage, "invalid shard %q: want K/N with 0 <= K < N, e.g. 0/3", s)
	}
	return Shard{Index: ki, Count: ni}, nil
}

// String renders the shard as "K/N", or "" for the whole sync.
func (s Shard) String() string {
	if s.Count <= 1 {
		return ""
	}
	return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count)
}

// Owns reports whether the image with destination name (REPO:TAG or REPO@DIGEST) is in the
// shard.
func (s Shard) Owns(name string) bool {
	if s.Count <= 1 {
		return true
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return h.Sum64()%uint64(s.Count) == uint64(s.Index)
}
