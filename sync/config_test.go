package sync

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// skopeoExample is the example of skopeo-sync(1), unchanged.
const skopeoExample = `registry.example.com:
    images:
        busybox: []
        redis:
            - "1.0"
            - "2.0"
            - "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    images-by-tag-regex:
        nginx: ^1\.13\.[12]-alpine-perl$
    images-by-semver:
        alpine: ">= 3.12.0"
    credentials:
        username: john
        password: this is a secret
    tls-verify: true
    cert-dir: /home/john/certs
quay.io:
    tls-verify: false
    images:
        coreos/etcd:
            - latest
`

// describe renders a source for comparison.
func describe(s Source) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s tags=%s", s.Name, strings.Join(s.Tags, ","))
	for _, f := range s.Filters {
		var inc, exc []string
		for _, re := range f.Include {
			inc = append(inc, re.String())
		}
		for _, re := range f.Exclude {
			exc = append(exc, re.String())
		}
		fmt.Fprintf(&b, " filter(include=%s exclude=%s", strings.Join(inc, "|"), strings.Join(exc, "|"))
		if f.Semver != nil {
			fmt.Fprintf(&b, " semver=%s", f.Semver)
		}
		if f.Newest > 0 {
			fmt.Fprintf(&b, " newest=%d", f.Newest)
		}
		b.WriteString(")")
	}
	if p := s.Platforms; p != nil {
		fmt.Fprintf(&b, " platforms=%d", p.MultiArch)
		for _, pl := range p.List {
			b.WriteString("," + platformString(pl))
		}
	}
	if s.Destination != nil {
		fmt.Fprintf(&b, " dest=%s", s.Destination)
	}
	sys := s.SystemContext
	if a := sys.DockerAuthConfig; a != nil {
		fmt.Fprintf(&b, " user=%s", a.Username)
	}
	if sys.InsecureSkipTLSVerify != types.OptionalBoolUndefined {
		fmt.Fprintf(&b, " insecure=%v", sys.InsecureSkipTLSVerify == types.OptionalBoolTrue)
	}
	if sys.CertDir != "" {
		fmt.Fprintf(&b, " certs=%s", sys.CertDir)
	}
	if sys.AuthFilePath != "" {
		fmt.Fprintf(&b, " authfile=%s", sys.AuthFilePath)
	}
	fmt.Fprintf(&b, " at=%s", s.Origin)
	return b.String()
}

func TestReadConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"skopeo's example", skopeoExample, []string{
			"docker://registry.example.com/busybox tags= user=john insecure=false certs=/home/john/certs at=f.yaml:3",
			"docker://registry.example.com/redis tags=1.0,2.0,sha256:0000000000000000000000000000000000000000000000000000000000000000 user=john insecure=false certs=/home/john/certs at=f.yaml:4",
			`docker://registry.example.com/nginx tags= filter(include=^1\.13\.[12]-alpine-perl$ exclude=) user=john insecure=false certs=/home/john/certs at=f.yaml:9`,
			"docker://registry.example.com/alpine tags= filter(include= exclude= semver=>=3.12.0) user=john insecure=false certs=/home/john/certs at=f.yaml:11",
			"docker://quay.io/coreos/etcd tags=latest insecure=true at=f.yaml:20",
		}},
		{"docker hub names", "docker.io:\n  images:\n    busybox: [latest]\n    library/alpine:\n", []string{
			"docker://docker.io/library/busybox tags=latest at=f.yaml:3",
			"docker://docker.io/library/alpine tags= at=f.yaml:4",
		}},
		{"extensions", `reg.example:5000:
  auth-file: /run/auth.json
  platforms: [linux/amd64, linux/arm64/v8]
  destination: "mirror/{{.Name}}"
  repositories:
    team/app:
      tags: [v1]
      include: ['^v2\.']
      exclude: [-rc, -beta]
      semver: ">=2.1 <3"
      newest: 2
    team/web:
      platforms: running
      destination: "{{.Repository}}"
      tls-verify: false
      credentials: {username: bob, password: x}
    team/all:
      platforms: all
`, []string{
			`docker://reg.example:5000/team/app tags=v1 filter(include=^v2\. exclude=-rc|-beta semver=>=2.1 <3 newest=2) platforms=0,linux/amd64,linux/arm64/v8 dest=mirror/{{.Name}} authfile=/run/auth.json at=f.yaml:6`,
			`docker://reg.example:5000/team/web tags= platforms=2 dest={{.Repository}} user=bob insecure=true authfile=/run/auth.json at=f.yaml:12`,
			`docker://reg.example:5000/team/all tags= platforms=1 dest=mirror/{{.Name}} authfile=/run/auth.json at=f.yaml:17`,
		}},
		{"merge keys and an anchors-only entry, as skopeo reads them", `.defaults: &defaults
  tls-verify: false
  credentials: {username: bot, password: x}
.web: &web {cert-dir: /certs}
q.example:
  <<: *defaults
  images: {app: [v1]}
r.example:
  <<: [*web, *defaults]
  tls-verify: true
  images: {web: [v2]}
`, []string{
			"docker://q.example/app tags=v1 user=bot insecure=true at=f.yaml:7",
			"docker://r.example/web tags=v2 user=bot insecure=false certs=/certs at=f.yaml:11",
		}},
		// skopeo joins the key and each repository with a slash, so a key may carry a path.
		{"registry key with a repository path, as skopeo takes it", "q.example:5000/team:\n  images: {app: [v1]}\n  images-by-tag-regex: {web/ui: ^v2}\ndocker.io/library:\n  images: {busybox: [latest]}\n", []string{
			"docker://q.example:5000/team/app tags=v1 at=f.yaml:2",
			"docker://q.example:5000/team/web/ui tags= filter(include=^v2 exclude=) at=f.yaml:3",
			"docker://docker.io/library/busybox tags=latest at=f.yaml:5",
		}},
		{"anchors", "a.example: &reg\n  images: {app: [v1]}\nb.example: *reg\n", []string{
			"docker://a.example/app tags=v1 at=f.yaml:2",
			"docker://b.example/app tags=v1 at=f.yaml:2",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadConfig(strings.NewReader(tc.yaml), "f.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			var desc []string
			for _, s := range got {
				desc = append(desc, describe(s))
			}
			if strings.Join(desc, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(desc, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestReadConfigKeepsBase(t *testing.T) {
	t.Parallel()
	base := &types.SystemContext{CertDir: "/base", InsecureSkipTLSVerify: types.OptionalBoolTrue}
	got, err := ReadConfig(strings.NewReader("q.example:\n  tls-verify: true\n  images: {a: []}\nr.example:\n  images: {b: []}\n"), "f.yaml", base)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].SystemContext.InsecureSkipTLSVerify != types.OptionalBoolFalse || got[0].SystemContext.CertDir != "/base" {
		t.Errorf("q.example: %+v", got[0].SystemContext)
	}
	if got[1].SystemContext.InsecureSkipTLSVerify != types.OptionalBoolTrue {
		t.Errorf("r.example: %+v", got[1].SystemContext)
	}
	if base.InsecureSkipTLSVerify != types.OptionalBoolTrue || base.DockerAuthConfig != nil {
		t.Errorf("base changed: %+v", base)
	}
	if got[0].Platforms != nil {
		t.Errorf("platforms %+v without a platforms key", got[0].Platforms)
	}
}

func TestReadConfigRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, want string // want: "LINE: substring"
	}{
		{"empty file", "", "empty file"},
		{"not a mapping", "- a\n- b\n", "1: the file must be a mapping"},
		{"unknown registry key", "q.io:\n  images: {a: []}\n  tls_verify: false\n", `3: unknown key "tls_verify"`},
		{"unknown repository key", "q.io:\n  repositories:\n    a:\n      tag: [v1]\n", `4: unknown key "tag" in repository a`},
		{"unknown credentials key", "q.io:\n  images: {a: []}\n  credentials: {user: x}\n", `3: unknown key "user"`},
		{"invalid regex", "q.io:\n  images-by-tag-regex:\n    app: '^v(1'\n", `3: invalid regular expression "^v(1"`},
		{"invalid exclude", "q.io:\n  repositories:\n    app:\n      exclude: ['a', '[']\n", `4: invalid regular expression "["`},
		{"invalid semver", "q.io:\n  images-by-semver:\n    app: '>=banana'\n", `3: invalid semver range ">=banana"`},
		{"invalid tag", "q.io:\n  images:\n    app: ['v1', 'bad tag']\n", `3: invalid tag or digest "bad tag"`},
		{"repository with tag", "q.io:\n  images:\n    app:v1: []\n", `3: "app:v1" names an image`},
		{"invalid repository", "q.io:\n  images:\n    App: []\n", `3: invalid repository "App"`},
		{"not a registry", "busybox:\n  images: {a: []}\n", `1: invalid registry "busybox"`},
		{"invalid registry path", "q.io/Team:\n  images: {a: []}\n", `1: invalid registry "q.io/Team"`},
		{"registry path with a tag", "q.io/team:v1:\n  images: {a: []}\n", `1: invalid registry "q.io/team:v1"`},
		{"no images", "q.io:\n  tls-verify: false\n", "1: registry q.io lists no images"},
		{"bad tls-verify", "q.io:\n  images: {a: []}\n  tls-verify: maybe\n", "3: tls-verify must be true or false"},
		{"bad platforms", "q.io:\n  images: {a: []}\n  platforms: [linux]\n", "3: platforms: invalid platform"},
		{"bad newest", "q.io:\n  repositories:\n    a: {newest: 0}\n", "3: newest must be"},
		{"bad template", "q.io:\n  images: {a: []}\n  destination: '{{.Nope}}'\n", "3: "},
		{"uppercase template result", "q.io:\n  images: {a: []}\n  destination: 'Mirror/{{.Name}}'\n", "3: "},
		{"duplicate key", "q.io:\n  images: {a: []}\n  images: {b: []}\n", `3: registry q.io: "images" is repeated (first at line 2)`},
		{"two documents", "q.io:\n  images: {a: []}\n---\nr.io: {}\n", "more than one YAML document"},
		{"syntax", "q.io:\n  images: [\n", "2: did not find expected node content"},
		{"unquoted IPv6 registry", "q.io:\n  images: {a: []}\n[::1]:5000:\n  images: {a: []}\n", "3: did not find expected key (an IPv6 registry key must be quoted: '[::1]:5000':)"},
		{"tab indentation", "q.io:\n\timages:\n\t\ta: []\n", "2: found character that cannot start any token (a tab: YAML indents with spaces only)"},
		{"too large", "q.io:\n  images:\n" + strings.Repeat("    app: []\n", 400000), "larger than 4 MiB"},
		{"only anchors", ".defaults: {tls-verify: false}\n", "1: no registries"},
		{"unknown key merged in", ".d: &d {tls_verify: false}\nq.io:\n  <<: *d\n  images: {a: []}\n", `1: unknown key "tls_verify" in registry q.io`},
		{"merge of a scalar", "q.io:\n  <<: x\n  images: {a: []}\n", "2: registry q.io: << must merge a mapping"},
		{"regsync configuration", "version: 1\ncreds:\n  - registry: q.io\nsync:\n  - source: q.io/a\n    target: r.io/a\n    type: repository\n", "4: this is a regsync configuration"},
		{"regsync's tags allow", "q.io:\n  repositories:\n    a:\n      tags: {allow: ['^v1']}\n", "4: tags must be a list of tags and digests (regsync's tags allow, deny and semverRange are include, exclude and semver here)"},
		{"regsync's referrers", "q.io:\n  images: {a: []}\n  referrers: true\n", `3: unknown key "referrers" in registry q.io: regsync's referrers is the flag --referrers in imgcopy`},
		{"list of tags wanted", "q.io:\n  images:\n    a: {x: 1}\n", "3: the tags of a must be a string or a list"},
		{"huge regex", "q.io:\n  images-by-tag-regex:\n    app: '" + strings.Repeat("a", 3<<20) + "'\n", "3: the regular expression \"aaa"},
		{"huge invalid regex", "q.io:\n  images-by-tag-regex:\n    app: '" + strings.Repeat("a", 10000) + "('\n", "3: invalid regular expression \"aaa"},
		{"huge semver range", "q.io:\n  images-by-semver:\n    app: '" + strings.Repeat(">=1.0.0 <2 || ", 100000) + "'\n", "3: invalid semver range \">=1.0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ReadConfig(strings.NewReader(tc.yaml), "f.yaml", nil)
			if !errors.Is(err, types.ErrUsage) {
				t.Fatalf("got %v, want a usage error", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %T, want *ConfigError", err)
			}
			if !strings.Contains(err.Error(), "f.yaml:"+tc.want) && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, "f.yaml:"+tc.want)
			}
			if strings.Contains(tc.want, ":") && tc.want[0] >= '0' && tc.want[0] <= '9' && !strings.Contains(err.Error(), "f.yaml:"+tc.want) {
				t.Errorf("got %q, want line %s", err, tc.want)
			}
			if len(err.Error()) > 1000 {
				t.Errorf("the error is %d bytes long, want one short line: %.300s…", len(err.Error()), err)
			}
		})
	}
}

func TestReadConfigBoundsAliases(t *testing.T) {
	t.Parallel()
	// An alias bomb that passes every other check: many registries share, by alias, one
	// mapping of many repositories, so a small file would expand to a million sources.
	var b strings.Builder
	b.WriteString("r0.example:\n  images: &big\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "    app%d: []\n", i)
	}
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&b, "r%d.example: {images: *big}\n", i)
	}
	_, err := ReadConfig(strings.NewReader(b.String()), "f.yaml", nil)
	if !errors.Is(err, types.ErrUsage) || !strings.Contains(err.Error(), "YAML nodes") {
		t.Fatalf("got %v, want a usage error about the YAML nodes", err)
	}
}

func TestReadConfigUnreadable(t *testing.T) {
	t.Parallel()
	_, err := ReadConfig(iotest.ErrReader(syscall.EISDIR), "dir.yaml", nil)
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, types.ErrUsage) {
		t.Fatalf("got %v, want a *ConfigError", err)
	}
}
