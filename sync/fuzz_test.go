package sync

import (
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// FuzzReadConfig feeds the configuration reader arbitrary YAML: it must never panic, and every
// refusal is a usage error (*ConfigError).
func FuzzReadConfig(f *testing.F) {
	f.Add(skopeoExample)
	f.Add("q.io:\n  repositories:\n    a: {tags: [v1], include: ['^v'], exclude: [x], semver: '>=1', newest: 2, platforms: all, destination: '{{.Name}}'}\n")
	f.Add("a: &x [*x]\n")
	f.Add("q.io: {images: {a: [\"sha256:" + strings.Repeat("0", 64) + "\"]}}")
	f.Fuzz(func(t *testing.T, data string) {
		srcs, err := ReadConfig(strings.NewReader(data), "f.yaml", nil)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, types.ErrUsage) {
				t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
			}
			return
		}
		for _, s := range srcs {
			if !strings.HasPrefix(s.Name, "docker://") || s.SystemContext == nil {
				t.Fatalf("source %+v", s)
			}
		}
	})
}

// FuzzParseSourceName checks that stored names never panic and that a name, when accepted,
// gives a destination name that a registry store would accept (or a usage error).
func FuzzParseSourceName(f *testing.F) {
	for _, s := range []string{"quay.io/team/app:1", "v1", "team/app@sha256:" + strings.Repeat("a", 64), "localhost:5000/a:b", "docker.io/library/alpine:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSourceName(s)
		if err != nil {
			return
		}
		for _, nm := range []naming{{}, {scoped: true}} {
			name, err := nm.destinationName(n)
			if err != nil {
				continue
			}
			if strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
				t.Fatalf("%q named %q", s, name)
			}
		}
	})
}
