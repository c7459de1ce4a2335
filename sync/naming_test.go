package sync

import (
	"fmt"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

func TestDestinationName(t *testing.T) {
	t.Parallel()
	tmpl := func(s string) *RepoTemplate {
		rt, err := ParseRepoTemplate(s)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name, src string // src: a stored name, as listers give it
		n         naming
		want      string // "" means an error
	}{
		{"skopeo keeps the last element", "quay.io/team/app:1", naming{}, "app:1"},
		{"docker hub", "docker.io/library/busybox:latest", naming{}, "busybox:latest"},
		{"scoped keeps registry and path", "quay.io/team/app:1", naming{scoped: true}, "quay.io/team/app:1"},
		{"scoped docker hub", "docker.io/library/busybox:1", naming{scoped: true}, "docker.io/library/busybox:1"},
		{"scoped port", "localhost:5000/app:1", naming{scoped: true}, "localhost_5000/app:1"},
		{"scoped IPv6 with port", "[::1]:5000/app:1", naming{scoped: true}, "0-0-0-0-0-0-0-1_5000/app:1"},
		{"scoped IPv6 without port", "[2001:DB8::]/app:1", naming{scoped: true}, "2001-db8-0-0-0-0-0-0/app:1"},
		{"scoped port into dir: keeps the colon, as skopeo", "localhost:5000/app:1", naming{scoped: true, portColon: true}, "localhost:5000/app:1"},
		{"suffix", "quay.io/team/app:1", naming{suffix: "-mirror"}, "app:1-mirror"},
		{"digest alone", "quay.io/team/app@" + dg, naming{suffix: "-x"}, "app@" + dg},
		{"tag and digest keep the tag", "quay.io/team/app:1@" + dg, naming{}, "app:1"},
		{"template", "quay.io/team/app:1", naming{template: tmpl("mirror/{{.Name}}")}, "mirror/app:1"},
		{"template wins over scoped", "quay.io/team/app:1", naming{template: tmpl("{{.Repository}}"), scoped: true}, "team/app:1"},
		{"template with registry", "quay.io/team/app:1", naming{template: tmpl("{{.Registry}}/{{.Name}}")}, "quay.io/app:1"},
		{"local path", "team/app:1", naming{}, "app:1"},
		{"local path scoped keeps it as written", "team/app:1", naming{scoped: true}, "team/app:1"},
		{"local single element", "app:1", naming{scoped: true}, "app:1"},
		{"bare tag stays bare", "v1", naming{}, "v1"},
		{"bare tag with a template", "v1", naming{template: tmpl("bundle")}, "bundle:v1"},
		{"neither a tag nor a name", "v 1", naming{}, ""},
		{"a tag only in part", "-v1", naming{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ""
			src, err := parseSourceName(tc.src)
			if err == nil {
				got, err = tc.n.destinationName(src)
			}
			if tc.want == "" {
				if !errors.Is(err, types.ErrUsage) {
					t.Errorf("got %q, %v; want a usage error", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseRepoTemplateRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"{{.Nope}}", "{{.Name", "Mirror/{{.Name}}", "", "a:b/{{.Name}}", "{{.Name}}@x", "../{{.Name}}"} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseRepoTemplate(s); !errors.Is(err, types.ErrUsage) {
				t.Errorf("ParseRepoTemplate(%q) = %v, want ErrUsage", s, err)
			}
		})
	}
}

func TestShard(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "1", "3/3", "-1/3", "0/0", "a/b", "1/3/4"} {
		if _, err := ParseShard(bad); !errors.Is(err, types.ErrUsage) {
			t.Errorf("ParseShard(%q) = %v, want ErrUsage", bad, err)
		}
	}
	var shards []Shard
	for k := range 3 {
		s, err := ParseShard(fmt.Sprintf("%d/3", k))
		if err != nil || s.String() != fmt.Sprintf("%d/3", k) {
			t.Fatalf("ParseShard: %v, %v", s, err)
		}
		shards = append(shards, s)
	}
	counts := make([]int, 3)
	for i := range 300 {
		name := fmt.Sprintf("repo%d:tag%d", i%10, i)
		owners := 0
		for k, s := range shards {
			if s.Owns(name) {
				owners++
				counts[k]++
			}
		}
		if owners != 1 || !(Shard{}).Owns(name) {
			t.Fatalf("%s owned by %d shards", name, owners)
		}
	}
	for k, n := range counts {
		if n < 60 {
			t.Errorf("shard %d/3 got %d of 300 images", k, n)
		}
	}
}

func TestRepository(t *testing.T) {
	t.Parallel()
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for name, want := range map[string]string{
		"app:1":                      "app",
		"team/app:1":                 "team/app",
		"app@" + dg:                  "app",
		"localhost_5000/app:1":       "localhost_5000/app",
		"localhost:5000/team/app:1":  "localhost:5000/team/app",
		"localhost:5000/app@" + dg:   "localhost:5000/app",
		"localhost:5000/app:1@" + dg: "localhost:5000/app",
		"v1":                         "v1",
	} {
		if got := repository(name); got != want {
			t.Errorf("repository(%q) = %q, want %q", name, got, want)
		}
	}
}
