package sync

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"go.yaml.in/yaml/v3"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// This file reads the sync configuration: skopeo sync's YAML source file, unchanged, plus
// imgcopy's extensions. Unlike skopeo, unknown keys, invalid patterns and invalid names are
// refused, with the line they are on.

// maxConfigNodes bounds the YAML nodes a configuration may expand to (aliases included).
const maxConfigNodes = 200000

// maxPatternSize bounds a regular expression: Go compiles one to about 150 times its length
// in memory (3 MB took 460 MB), and a tag is at most 128 characters.
const maxPatternSize = 16 << 10

// maxQuoted bounds a value, or an error quoting it, in a ConfigError: the error is one line,
// and a file may hold a value of megabytes. Longer ones keep their start and their end.
const maxQuoted = 200

// ConfigError is a problem in a sync configuration file, at a line. It wraps types.ErrUsage.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

// Error implements error.
func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Unwrap returns types.ErrUsage.
func (e *ConfigError) Unwrap() error { return types.ErrUsage }

// configReader walks the YAML nodes of one file.
type configReader struct {
	file  string
	nodes int
}

func (c *configReader) errorf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	for i, a := range args {
		switch a := a.(type) {
		case string:
			args[i] = shorten(a)
		case error:
			args[i] = shorten(a.Error())
		}
	}
	return &ConfigError{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// shorten returns s, or its start and end around "…" when it is longer than maxQuoted.
func shorten(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	head, tail := maxQuoted/2, len(s)-maxQuoted/2
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + "…" + s[tail:]
}

// resolve follows an alias and counts the node against maxConfigNodes.
func (c *configReader) resolve(n *yaml.Node) (*yaml.Node, error) {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 100 {
			return nil, c.errorf(n, "aliases nested too deeply")
		}
		n = n.Alias
	}
	if c.nodes++; c.nodes > maxConfigNodes {
		return nil, c.errorf(n, "more than %d YAML nodes", maxConfigNodes)
	}
	return n, nil
}

// pair is one key: value of a YAML mapping.
type pair struct {
	key   string
	k, v  *yaml.Node
	isNil bool
}

// mapping returns the pairs of a mapping node, refusing duplicate keys and keys not in
// known (when known is not nil). A null node is an empty mapping.
func (c *configReader) mapping(n *yaml.Node, what string, known []string) ([]pair, error) {
	n, err := c.resolve(n)
	if err != nil {
		return nil, err
	}
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, c.errorf(n, "%s must be a mapping", what)
	}
	seen := map[string]int{}
	var out, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" { // "<<: *defaults", as skopeo's YAML reader allows
			m, err := c.merge(v, what, known)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, c.errorf(k, "%s: keys must be plain strings", what)
		}
		if line, dup := seen[k.Value]; dup {
			return nil, c.errorf(k, "%s: %q is repeated (first at line %d)", what, k.Value, line)
		}
		seen[k.Value] = k.Line
		if known != nil && !contains(known, k.Value) {
			if use, ok := regsyncKeys[k.Value]; ok {
				return nil, c.errorf(k, "unknown key %q in %s: regsync's %s is %s in imgcopy", k.Value, what, k.Value, use)
			}
			return nil, c.errorf(k, "unknown key %q in %s (known keys: %s)", k.Value, what, strings.Join(known, ", "))
		}
		rv, err := c.resolve(v)
		if err != nil {
			return nil, err
		}
		out = append(out, pair{key: k.Value, k: k, v: rv, isNil: isNull(rv)})
	}
	// The keys written in the mapping win over merged ones, and earlier merges over later.
	for _, m := range merged {
		if _, dup := seen[m.key]; !dup {
			seen[m.key] = m.k.Line
			out = append(out, m)
		}
	}
	return out, nil
}

// merge returns the pairs a YAML merge key ("<<") brings in: those of one mapping, or of a
// list of mappings.
func (c *configReader) merge(v *yaml.Node, what string, known []string) ([]pair, error) {
	v, err := c.resolve(v)
	if err != nil {
		return nil, err
	}
	if v.Kind != yaml.SequenceNode {
		if v.Kind != yaml.MappingNode {
			return nil, c.errorf(v, "%s: << must merge a mapping or a list of mappings", what)
		}
		return c.mapping(v, what, known)
	}
	var out []pair
	for _, e := range v.Content {
		e, err := c.resolve(e)
		if err != nil {
			return nil, err
		}
		if e.Kind != yaml.MappingNode {
			return nil, c.errorf(e, "%s: << must merge a mapping or a list of mappings", what)
		}
		m, err := c.mapping(e, what, known)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns a scalar node's string value.
func (c *configReader) scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", c.errorf(n, "%s must be a string", what)
	}
	return n.Value, nil
}

// strings returns a scalar or a sequence of scalars as a list (null: none).
func (c *configReader) strings(n *yaml.Node, what string) ([]string, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, c.errorf(n, "%s must be a string or a list of strings", what)
	}
	var out []string
	for _, e := range n.Content {
		e, err := c.resolve(e)
		if err != nil {
			return nil, err
		}
		s, err := c.scalar(e, what+" entries")
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (c *configReader) boolean(n *yaml.Node, what string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		return false, c.errorf(n, "%s must be true or false", what)
	}
	return b, nil
}

func (c *configReader) regexps(n *yaml.Node, what string) ([]*regexp.Regexp, error) {
	pats, err := c.strings(n, what)
	if err != nil {
		return nil, err
	}
	var out []*regexp.Regexp
	for _, p := range pats {
		if len(p) > maxPatternSize {
			return nil, c.errorf(n, "the regular expression %q in %s is longer than %d KiB", p, what, maxPatternSize>>10)
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, c.errorf(n, "invalid regular expression %q in %s: %v", p, what, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func (c *configReader) semverRange(n *yaml.Node, what string) (*semver.Constraints, error) {
	s, err := c.scalar(n, what)
	if err != nil {
		return nil, err
	}
	r, err := semver.NewConstraint(s)
	if err != nil {
		return nil, c.errorf(n, "invalid semver range %q in %s: %v", s, what, err)
	}
	return r, nil
}

// platforms reads "all", "running" (or "system"), or a list of OS/ARCH[/VARIANT].
func (c *configReader) platforms(n *yaml.Node) (*Platforms, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "all":
			return &Platforms{MultiArch: copier.MultiArchAll}, nil
		case "running", "system":
			return &Platforms{MultiArch: copier.MultiArchSystem}, nil
		}
	}
	list, err := c.strings(n, "platforms")
	if err != nil || len(list) == 0 {
		return nil, c.errorf(n, "platforms must be all, running or a list of OS/ARCH[/VARIANT]")
	}
	p := &Platforms{MultiArch: copier.MultiArchDefault}
	for _, s := range list {
		pl, err := manifest.ParsePlatform(s)
		if err != nil {
			return nil, c.errorf(n, "platforms: %v", err)
		}
		p.List = append(p.List, pl)
	}
	return p, nil
}

// repositoryName checks that repo names a repository of registry (no tag or digest).
func (c *configReader) repositoryName(registry string, k *yaml.Node) (string, error) {
	named, err := reference.ParseNormalizedNamed(registry + "/" + k.Value)
	if err != nil {
		return "", c.errorf(k, "invalid repository %q on %s: %v", k.Value, registry, err)
	}
	if !reference.IsNameOnly(named) {
		return "", c.errorf(k, "%q names an image, not a repository: list its tags under the repository", k.Value)
	}
	return named.Name(), nil
}

// checkTag checks a literal tag or digest of a repository.
func (c *configReader) checkTag(n *yaml.Node, repo, t string) error {
	if _, err := digest.Parse(t); err == nil {
		return nil
	}
	named, _ := reference.ParseNormalizedNamed(repo)
	if _, err := reference.WithTag(named, t); err != nil {
		return c.errorf(n, "invalid tag or digest %q for %s", t, repo)
	}
	return nil
}
