package sync

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"

	"github.com/pkg/errors"
	"go.yaml.in/yaml/v3"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
)

// Keys of a registry entry: skopeo sync's, then imgcopy's.
var registryKeys = []string{
	"images", "images-by-tag-regex", "images-by-semver", "credentials", "tls-verify", "cert-dir",
	"auth-file", "platforms", "destination", "repositories",
}

// Keys of an entry under repositories.
var repositoryKeys = []string{
	"tags", "include", "exclude", "semver", "newest", "platforms", "destination",
	"credentials", "auth-file", "tls-verify", "cert-dir",
}

var credentialKeys = []string{"username", "password", "identitytoken"}

// ReadConfig reads a sync configuration (see README.md, "sync configuration") from r, named
// file in messages, and returns its sources in file order. base is the SystemContext the
// sources' access settings start from (the command line's source flags); it is copied, never
// changed. Errors are *ConfigError values (types.ErrUsage) naming the line.
func ReadConfig(r io.Reader, file string, base *types.SystemContext) ([]Source, error) {
	data, err := iolimits.ReadAtMost(r, maxConfigSize)
	switch {
	case errors.Is(err, iolimits.ErrTooLarge):
		return nil, &ConfigError{File: file, Msg: fmt.Sprintf("larger than %d MiB", maxConfigSize>>20)}
	case err != nil:
		return nil, &ConfigError{File: file, Msg: err.Error()}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, &ConfigError{File: file, Msg: "empty file: no registries"}
		}
		return nil, syntaxError(file, data, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err != io.EOF {
		return nil, &ConfigError{File: file, Line: more.Line, Msg: "more than one YAML document"}
	}
	c := &configReader{file: file}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	regs, err := c.mapping(root, "the file", nil)
	if err != nil {
		return nil, err
	}
	if len(regs) == 0 {
		return nil, c.errorf(root, "no registries")
	}
	if err := c.notRegsync(regs); err != nil {
		return nil, err
	}
	var sources []Source
	for _, reg := range regs {
		if anchorsOnly(reg) {
			continue
		}
		s, err := c.registry(reg, base)
		if err != nil {
			return nil, err
		}
		sources = append(sources, s...)
	}
	if len(sources) == 0 {
		return nil, c.errorf(root, "no registries")
	}
	return sources, nil
}

// notRegsync refuses a regsync configuration (version, creds, defaults, sync) with a
// message that says which format this is and where regsync's settings went, rather than
// "invalid registry "version"".
func (c *configReader) notRegsync(regs []pair) error {
	for _, reg := range regs {
		if reg.key == "sync" && reg.v.Kind == yaml.SequenceNode {
			return c.errorf(reg.k, "this is a regsync configuration (version, creds, sync); imgcopy sync --config reads "+
				"skopeo sync's format (registry → images), with imgcopy's keys (see the README, \"Sync configuration\"): "+
				"regsync's tags allow, deny and semverRange are include, exclude and semver under repositories; "+
				"referrers, digestTags and forceRecursive are the flags --referrers, --digest-tags and --force-recursive")
		}
	}
	return nil
}

// regsyncKeys names, for regsync's keys written in imgcopy's configuration, what to use.
var regsyncKeys = map[string]string{
	"referrers": "the flag --referrers", "digestTags": "the flag --digest-tags", "forceRecursive": "the flag --force-recursive",
	"platform": "platforms (a list)", "allow": "include", "deny": "exclude", "semverRange": "semver",
	"parallel": "the flag --image-parallel", "tls": "tls-verify",
}

// maxConfigSize bounds a configuration file.
const maxConfigSize = 4 << 20

// anchorsOnly reports whether a top-level entry only holds settings for YAML anchors
// (".defaults: &defaults {tls-verify: false}", merged into registries with "<<: *defaults"):
// a mapping that lists no images under a key that is no registry host name. skopeo ignores
// such entries, so they are skipped; a registry without images is still refused, as a typo.
func anchorsOnly(reg pair) bool {
	if reg.v.Kind != yaml.MappingNode || checkRegistry(reg.key) == nil {
		return false
	}
	for i := 0; i+1 < len(reg.v.Content); i += 2 {
		if contains([]string{"images", "images-by-tag-regex", "images-by-semver", "repositories"}, reg.v.Content[i].Value) {
			return false
		}
	}
	return true
}

// syntaxError turns a YAML syntax error ("yaml: line N: ...") into a ConfigError naming the
// line.
func syntaxError(file string, data []byte, err error) error {
	rest, ok := strings.CutPrefix(err.Error(), "yaml: line ")
	num, msg, ok2 := strings.Cut(rest, ": ")
	line, aerr := strconv.Atoi(num)
	if !ok || !ok2 || aerr != nil {
		line, msg = 0, strings.TrimPrefix(err.Error(), "yaml: ")
	}
	if l := unquotedIPv6Key(data); l > 0 {
		// YAML reads "[::1]:5000:" as the start of a list, and says only that it is lost.
		return &ConfigError{File: file, Line: l, Msg: msg + " (an IPv6 registry key must be quoted: '[::1]:5000':)"}
	}
	if line == 0 {
		return &ConfigError{File: file, Msg: err.Error()}
	}
	if lines := bytes.Split(data, []byte("\n")); line >= 1 && line <= len(lines) && bytes.ContainsRune(lines[line-1], '\t') {
		msg += " (a tab: YAML indents with spaces only)"
	}
	return &ConfigError{File: file, Line: line, Msg: msg}
}

// ipv6Key is a registry key written with an IPv6 address, unquoted: "[::1]:5000:".
var ipv6Key = regexp.MustCompile(`^\[[0-9A-Fa-f:.]*\](:[0-9]+)?:\s*$`)

// unquotedIPv6Key returns the 1-based line of the first unquoted IPv6 registry key in data, 0
// when there is none.
func unquotedIPv6Key(data []byte) int {
	for i, l := range bytes.Split(data, []byte("\n")) {
		if ipv6Key.Match(bytes.TrimRight(l, "\r")) {
			return i + 1
		}
	}
	return 0
}

// access holds the settings of a registry or repository entry that apply to its sources.
type access struct {
	sys         types.SystemContext
	platforms   *Platforms
	destination *RepoTemplate
}

// registry returns the sources of one registry entry.
func (c *configReader) registry(reg pair, base *types.SystemContext) ([]Source, error) {
	host := reg.key
	if err := checkRegistry(host); err != nil {
		return nil, c.errorf(reg.k, "invalid registry %q: %v", host, err)
	}
	fields, err := c.mapping(reg.v, "registry "+host, registryKeys)
	if err != nil {
		return nil, err
	}
	acc := access{}
	if base != nil {
		acc.sys = *base
	}
	if err := c.applyAccess(&acc, fields); err != nil {
		return nil, err
	}
	if len(pick(fields, "images", "images-by-tag-regex", "images-by-semver", "repositories")) == 0 {
		return nil, c.errorf(reg.k, "registry %s lists no images (images, images-by-tag-regex, images-by-semver or repositories)", host)
	}
	var out []Source
	for _, f := range fields {
		var got []Source
		switch f.key {
		case "images":
			got, err = c.images(host, f, acc)
		case "images-by-tag-regex", "images-by-semver":
			got, err = c.filtered(host, f, acc)
		case "repositories":
			got, err = c.repositories(host, f, acc)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

func pick(fields []pair, keys ...string) []pair {
	var out []pair
	for _, f := range fields {
		if contains(keys, f.key) {
			out = append(out, f)
		}
	}
	return out
}

// applyAccess applies credentials, auth-file, tls-verify, cert-dir, platforms and
// destination from fields to acc.
func (c *configReader) applyAccess(acc *access, fields []pair) error {
	for _, f := range fields {
		var err error
		switch f.key {
		case "credentials":
			err = c.credentials(&acc.sys, f.v)
		case "auth-file":
			acc.sys.AuthFilePath, err = c.scalar(f.v, f.key)
		case "cert-dir":
			acc.sys.CertDir, err = c.scalar(f.v, f.key)
		case "tls-verify":
			var verify bool
			verify, err = c.boolean(f.v, f.key)
			acc.sys.InsecureSkipTLSVerify = types.NewOptionalBool(!verify)
		case "platforms":
			acc.platforms, err = c.platforms(f.v)
		case "destination":
			var s string
			if s, err = c.scalar(f.v, f.key); err == nil {
				if acc.destination, err = ParseRepoTemplate(s); err != nil {
					err = c.errorf(f.v, "%v", err)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *configReader) credentials(sys *types.SystemContext, n *yaml.Node) error {
	fields, err := c.mapping(n, "credentials", credentialKeys)
	if err != nil {
		return err
	}
	auth := types.DockerAuthConfig{}
	for _, f := range fields {
		v, err := c.scalar(f.v, "credentials "+f.key)
		if err != nil {
			return err
		}
		switch f.key {
		case "username":
			auth.Username = v
		case "password":
			auth.Password = v
		case "identitytoken":
			auth.IdentityToken = v
		}
	}
	if auth != (types.DockerAuthConfig{}) {
		sys.DockerAuthConfig = &auth
		sys.NoCreds = false
	}
	return nil
}

// source returns a source of repo (HOST/PATH) with acc's settings, defined at n.
func (c *configReader) source(repo string, n *yaml.Node, acc access) Source {
	sys := acc.sys
	return Source{
		Name: "docker://" + repo, Platforms: acc.platforms, Destination: acc.destination,
		SystemContext: &sys, Origin: c.file + ":" + strconv.Itoa(n.Line),
	}
}

// eachRepository calls source for every repository → value pair of the mapping f.v (a key of
// registry host) and returns the sources it makes.
func (c *configReader) eachRepository(host string, f pair, source func(r pair, repo string) (Source, error)) ([]Source, error) {
	repos, err := c.mapping(f.v, f.key, nil)
	if err != nil {
		return nil, err
	}
	var out []Source
	for _, r := range repos {
		repo, err := c.repositoryName(host, r.k)
		if err != nil {
			return nil, err
		}
		s, err := source(r, repo)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// images reads skopeo's "images": repository → tags and digests (none: every tag).
func (c *configReader) images(host string, f pair, acc access) ([]Source, error) {
	return c.eachRepository(host, f, func(r pair, repo string) (Source, error) {
		s := c.source(repo, r.k, acc)
		tags, err := c.strings(r.v, "the tags of "+r.key)
		if err != nil {
			return s, err
		}
		for _, t := range tags {
			if err := c.checkTag(r.v, repo, t); err != nil {
				return s, err
			}
		}
		s.Tags = tags
		return s, nil
	})
}

// filtered reads skopeo's "images-by-tag-regex" and "images-by-semver": repository → one
// pattern or range.
func (c *configReader) filtered(host string, f pair, acc access) ([]Source, error) {
	return c.eachRepository(host, f, func(r pair, repo string) (Source, error) {
		s := c.source(repo, r.k, acc)
		var filter TagFilter
		var err error
		if f.key == "images-by-semver" {
			filter.Semver, err = c.semverRange(r.v, f.key+" of "+r.key)
		} else {
			filter.Include, err = c.regexps(r.v, f.key+" of "+r.key)
			if err == nil && len(filter.Include) != 1 {
				err = c.errorf(r.v, "%s of %s must be one regular expression", f.key, r.key)
			}
		}
		s.Filters = []TagFilter{filter}
		return s, err
	})
}

// repositories reads imgcopy's "repositories": repository → tags, filters, platforms,
// destination and access settings of its own.
func (c *configReader) repositories(host string, f pair, acc access) ([]Source, error) {
	return c.eachRepository(host, f, func(r pair, repo string) (Source, error) {
		fields, err := c.mapping(r.v, "repository "+r.key, repositoryKeys)
		if err != nil {
			return Source{}, err
		}
		racc := acc
		if err := c.applyAccess(&racc, fields); err != nil {
			return Source{}, err
		}
		s := c.source(repo, r.k, racc)
		return s, c.selection(&s, repo, fields)
	})
}

// selection reads the tag selection of a repositories entry into s.
func (c *configReader) selection(s *Source, repo string, fields []pair) error {
	var filter TagFilter
	hasFilter := false
	for _, f := range fields {
		var err error
		switch f.key {
		case "tags":
			if f.v.Kind == yaml.MappingNode {
				err = c.errorf(f.v, "tags must be a list of tags and digests (regsync's tags allow, deny and semverRange are include, exclude and semver here)")
			} else if s.Tags, err = c.strings(f.v, "tags"); err == nil {
				for _, t := range s.Tags {
					if err = c.checkTag(f.v, repo, t); err != nil {
						break
					}
				}
			}
		case "include":
			filter.Include, err = c.regexps(f.v, "include")
			hasFilter = true
		case "exclude":
			filter.Exclude, err = c.regexps(f.v, "exclude")
			hasFilter = true
		case "semver":
			filter.Semver, err = c.semverRange(f.v, "semver")
			hasFilter = true
		case "newest":
			if err = f.v.Decode(&filter.Newest); err != nil || filter.Newest < 1 {
				err = c.errorf(f.v, "newest must be a whole number of at least 1")
			}
			hasFilter = true
		}
		if err != nil {
			return err
		}
	}
	if hasFilter {
		s.Filters = []TagFilter{filter}
	}
	return nil
}

// checkRegistry checks a registry key: a host name (with a dot or a port, or localhost:
// "quay.io", "localhost:5000", "docker.io"), optionally followed by a repository path that
// the repositories listed under it continue ("quay.io/prometheus"), since skopeo joins the
// key and each repository with a slash.
func checkRegistry(key string) error {
	host, _, hasPath := strings.Cut(key, "/")
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return fmt.Errorf("not a registry host name (want e.g. quay.io or localhost:5000)")
	}
	named, err := reference.ParseNormalizedNamed(key + "/x")
	if err != nil {
		if hasPath {
			return fmt.Errorf("not a registry host name and repository path: %v", err)
		}
		return err
	}
	if d := reference.Domain(named); d != host && !(host == "index.docker.io" && d == "docker.io") {
		return fmt.Errorf("not a registry host name")
	}
	return nil
}
