package credentials

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// testEnv is a private HOME, XDG and PATH for one test; it uses t.Setenv, so callers must not
// use t.Parallel.
type testEnv struct {
	home, runtime, config, helperLog string
}

// fakeHelper answers "get" for a few server URLs and logs every URL it was asked for.
const fakeHelper = `#!/bin/sh
url=$(cat)
echo "$1 $url" >> "$HELPER_LOG"
case "$url" in
  reg.example:5000) echo '{"ServerURL":"reg.example:5000","Username":"helperuser","Secret":"helperpass"}' ;;
  tok.example) echo '{"ServerURL":"tok.example","Username":"<token>","Secret":"refresh-123"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hubuser","Secret":"hubpass"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`

const brokenHelper = `#!/bin/sh
echo "keychain is locked"
exit 1
`

func setupEnv(t *testing.T) testEnv {
	t.Helper()
	root := t.TempDir()
	e := testEnv{
		home:      filepath.Join(root, "home"),
		runtime:   filepath.Join(root, "run"),
		config:    filepath.Join(root, "config"),
		helperLog: filepath.Join(root, "helper.log"),
	}
	bin := filepath.Join(root, "bin")
	for _, d := range []string{e.home, e.runtime, e.config, bin} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(bin, "docker-credential-fake"), fakeHelper, 0o700)
	writeFile(t, filepath.Join(bin, "docker-credential-broken"), brokenHelper, 0o700)
	t.Setenv("HOME", e.home)
	t.Setenv("XDG_RUNTIME_DIR", e.runtime)
	t.Setenv("XDG_CONFIG_HOME", e.config)
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("HELPER_LOG", e.helperLog)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	perUID := perUIDAuthFile
	perUIDAuthFile = func() string { return filepath.Join(root, "uidrun", "containers", "0", "auth.json") }
	t.Cleanup(func() { perUIDAuthFile = perUID })
	return e
}

func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestLookup(t *testing.T) {
	// Paths in files are relative to a root where "home", "run" and "config" live.
	cases := []struct {
		name       string
		files      map[string]string
		env        map[string]string // values may use {root}
		sys        *types.SystemContext
		host, repo string
		want       types.DockerAuthConfig
		wantErr    error
		wantHelper string // substring expected in the helper log
	}{
		{
			name: "no files is anonymous",
			host: "reg.example", repo: "a/b",
		},
		{
			name:  "NoCreds wins over files",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("u:p") + `"}}}`},
			sys:   &types.SystemContext{NoCreds: true},
			host:  "reg.example", repo: "a/b",
		},
		{
			name:  "explicit DockerAuthConfig wins",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("u:p") + `"}}}`},
			sys:   &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "x", Password: "y"}},
			host:  "reg.example", repo: "a/b",
			want: types.DockerAuthConfig{Username: "x", Password: "y"},
		},
		{
			name:  "runtime auth.json host key",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("u:p:with:colons") + `"}}}`},
			host:  "reg.example", repo: "a/b",
			want: types.DockerAuthConfig{Username: "u", Password: "p:with:colons"},
		},
		{
			name: "most specific key wins",
			files: map[string]string{"run/containers/auth.json": `{"auths":{
				"reg.example":{"auth":"` + b64("host:1") + `"},
				"reg.example/ns":{"auth":"` + b64("ns:2") + `"},
				"reg.example/ns/repo":{"auth":"` + b64("repo:3") + `"},
				"reg.example/ns/repo2":{"auth":"` + b64("other:4") + `"}}}`},
			host: "reg.example", repo: "ns/repo",
			want: types.DockerAuthConfig{Username: "repo", Password: "3"},
		},
		{
			name: "namespace key does not match a sibling prefix",
			files: map[string]string{"run/containers/auth.json": `{"auths":{
				"reg.example":{"auth":"` + b64("host:1") + `"},
				"reg.example/ns":{"auth":"` + b64("ns:2") + `"}}}`},
			host: "reg.example", repo: "nsx/repo",
			want: types.DockerAuthConfig{Username: "host", Password: "1"},
		},
		{
			name: "namespace key matches nested repo",
			files: map[string]string{"run/containers/auth.json": `{"auths":{
				"reg.example":{"auth":"` + b64("host:1") + `"},
				"reg.example/ns":{"auth":"` + b64("ns:2") + `"}}}`},
			host: "reg.example", repo: "ns/deep/repo",
			want: types.DockerAuthConfig{Username: "ns", Password: "2"},
		},
		{
			name:  "other registry does not match",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"reg.example:5001":{"auth":"` + b64("u:p") + `"}}}`},
			host:  "reg.example:5000", repo: "a",
		},
		{
			name:  "docker hub URL key matches docker.io",
			files: map[string]string{"home/.docker/config.json": `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"}}}`},
			host:  "docker.io", repo: "library/busybox",
			want: types.DockerAuthConfig{Username: "hub", Password: "pw"},
		},
		{
			name:  "docker hub URL key matches registry-1.docker.io",
			files: map[string]string{"home/.docker/config.json": `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"}}}`},
			host:  "registry-1.docker.io", repo: "library/busybox",
			want: types.DockerAuthConfig{Username: "hub", Password: "pw"},
		},
		{
			name: "docker.io repo key beats hub URL key",
			files: map[string]string{"home/.docker/config.json": `{"auths":{
				"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"},
				"docker.io/me/app":{"auth":"` + b64("me:app") + `"}}}`},
			host: "registry-1.docker.io", repo: "me/app",
			want: types.DockerAuthConfig{Username: "me", Password: "app"},
		},
		{
			name:  "URL key with scheme and port",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"http://localhost:5000/v2/":{"auth":"` + b64("l:p") + `"}}}`},
			host:  "localhost:5000", repo: "x",
			want: types.DockerAuthConfig{Username: "l", Password: "p"},
		},
		{
			name:  "identity token",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("u:") + `","identitytoken":"tok"}}}`},
			host:  "reg.example", repo: "a",
			want: types.DockerAuthConfig{Username: "u", IdentityToken: "tok"},
		},
		{
			name: "runtime file before config file before docker",
			files: map[string]string{
				"run/containers/auth.json":    `{"auths":{"reg.example":{"auth":"` + b64("run:1") + `"}}}`,
				"config/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("cfg:2") + `"}}}`,
				"home/.docker/config.json":    `{"auths":{"reg.example":{"auth":"` + b64("dock:3") + `"}}}`,
			},
			host: "reg.example", repo: "a",
			want: types.DockerAuthConfig{Username: "run", Password: "1"},
		},
		{
			name: "XDG_CONFIG_HOME file used when runtime has no entry",
			files: map[string]string{
				"run/containers/auth.json":    `{"auths":{"other.example":{"auth":"` + b64("o:o") + `"}}}`,
				"config/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("cfg:2") + `"}}}`,
			},
			host: "reg.example", repo: "a",
			want: types.DockerAuthConfig{Username: "cfg", Password: "2"},
		},
		{
			name: "REGISTRY_AUTH_FILE first",
			files: map[string]string{
				"custom.json":              `{"auths":{"reg.example":{"auth":"` + b64("env:0") + `"}}}`,
				"run/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("run:1") + `"}}}`,
			},
			env:  map[string]string{"REGISTRY_AUTH_FILE": "{root}/custom.json"},
			host: "reg.example", repo: "a",
			want: types.DockerAuthConfig{Username: "env", Password: "0"},
		},
		{
			name: "DOCKER_CONFIG replaces ~/.docker",
			files: map[string]string{
				"dc/config.json":           `{"auths":{"reg.example":{"auth":"` + b64("dc:1") + `"}}}`,
				"home/.docker/config.json": `{"auths":{"reg.example":{"auth":"` + b64("home:2") + `"}}}`,
			},
			env:  map[string]string{"DOCKER_CONFIG": "{root}/dc"},
			host: "reg.example", repo: "a",
			want: types.DockerAuthConfig{Username: "dc", Password: "1"},
		},
		{
			name:  "legacy dockercfg",
			files: map[string]string{"home/.dockercfg": `{"https://reg.example":{"auth":"` + b64("old:1") + `","email":"x@y"}}`},
			host:  "reg.example", repo: "a",
			want: types.DockerAuthConfig{Username: "old", Password: "1"},
		},
		{
			name:  "credHelpers per registry",
			files: map[string]string{"home/.docker/config.json": `{"auths":{"reg.example:5000":{"auth":"` + b64("file:1") + `"}},"credHelpers":{"reg.example:5000":"fake"}}`},
			host:  "reg.example:5000", repo: "a",
			want: types.DockerAuthConfig{Username: "helperuser", Password: "helperpass"},
		},
		{
			name:  "helper identity token",
			files: map[string]string{"home/.docker/config.json": `{"credHelpers":{"tok.example":"fake"}}`},
			host:  "tok.example", repo: "a",
			want: types.DockerAuthConfig{IdentityToken: "refresh-123"},
		},
		{
			name:  "credsStore asked with Docker Hub URL",
			files: map[string]string{"home/.docker/config.json": `{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"fake"}`},
			host:  "docker.io", repo: "library/alpine",
			want:       types.DockerAuthConfig{Username: "hubuser", Password: "hubpass"},
			wantHelper: "get https://index.docker.io/v1/",
		},
		{
			name: "helper not found falls through to later files",
			files: map[string]string{
				"run/containers/auth.json": `{"credHelpers":{"nohelp.example":"fake"}}`,
				"home/.docker/config.json": `{"auths":{"nohelp.example":{"auth":"` + b64("d:1") + `"}}}`,
			},
			host: "nohelp.example", repo: "a",
			want: types.DockerAuthConfig{Username: "d", Password: "1"},
		},
		{
			name: "broken helper does not hide later credentials",
			files: map[string]string{
				"run/containers/auth.json": `{"credsStore":"broken"}`,
				"home/.docker/config.json": `{"auths":{"reg.example":{"auth":"` + b64("d:1") + `"}}}`,
			},
			host: "reg.example", repo: "a",
			want: types.DockerAuthConfig{Username: "d", Password: "1"},
		},
		{
			name:  "broken helper alone is an error",
			files: map[string]string{"run/containers/auth.json": `{"credsStore":"broken"}`},
			host:  "reg.example", repo: "a",
			wantErr: errHelperSentinel,
		},
		{
			name:  "AuthFilePath is the only file",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("run:1") + `"}}}`, "only.json": `{}`},
			sys:   &types.SystemContext{AuthFilePath: "{root}/only.json"},
			host:  "reg.example", repo: "a",
		},
		{
			name:  "malformed JSON",
			files: map[string]string{"run/containers/auth.json": `{"auths":`},
			host:  "reg.example", repo: "a",
			wantErr: ErrInvalidAuthFile,
		},
		{
			name:  "wrong JSON shape",
			files: map[string]string{"run/containers/auth.json": `{"auths":["reg.example"]}`},
			host:  "reg.example", repo: "a",
			wantErr: ErrInvalidAuthFile,
		},
		{
			name:  "bad base64",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"reg.example":{"auth":"!!!notbase64"}}}`},
			host:  "reg.example", repo: "a",
			wantErr: ErrInvalidAuthEntry,
		},
		{
			name:  "auth without colon",
			files: map[string]string{"run/containers/auth.json": `{"auths":{"reg.example":{"auth":"` + b64("nocolon") + `"}}}`},
			host:  "reg.example", repo: "a",
			wantErr: ErrInvalidAuthEntry,
		},
		{
			name:  "oversized file",
			files: map[string]string{"run/containers/auth.json": `{"x":"` + strings.Repeat("a", maxAuthFileSize) + `"}`},
			host:  "reg.example", repo: "a",
			wantErr: ErrInvalidAuthFile,
		},
		{
			name:  "empty file is no logins",
			files: map[string]string{"run/containers/auth.json": "\n"},
			host:  "reg.example", repo: "a",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setupEnv(t)
			root := filepath.Dir(e.home)
			expand := func(s string) string { return strings.ReplaceAll(s, "{root}", root) }
			for rel, content := range tc.files {
				writeFile(t, filepath.Join(root, rel), content, 0o600)
			}
			for k, v := range tc.env {
				t.Setenv(k, expand(v))
			}
			sys := tc.sys
			if sys != nil {
				c := *sys
				c.AuthFilePath = expand(c.AuthFilePath)
				sys = &c
			}
			got, err := Lookup(context.Background(), sys, tc.host, tc.repo)
			switch {
			case tc.wantErr == errHelperSentinel:
				var he *helperError
				if !errors.As(err, &he) {
					t.Fatalf("want helper error, got %v", err)
				}
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("want %v, got %v", tc.wantErr, err)
				}
				return
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.wantHelper != "" {
				log, _ := os.ReadFile(e.helperLog)
				if !strings.Contains(string(log), tc.wantHelper) {
					t.Fatalf("helper log %q does not contain %q", log, tc.wantHelper)
				}
			}
		})
	}
}

// errHelperSentinel marks cases that expect a *helperError.
var errHelperSentinel = errors.New("helper error expected")

func TestErrorsDoNotLeakSecrets(t *testing.T) {
	e := setupEnv(t)
	// "c2VjcmV0" is base64("secret") with a missing colon; a bad entry must not echo it.
	writeFile(t, filepath.Join(e.runtime, "containers", "auth.json"), `{"auths":{"reg.example":{"auth":"c2VjcmV0"}}}`, 0o600)
	_, err := Lookup(context.Background(), nil, "reg.example", "a")
	if !errors.Is(err, ErrInvalidAuthEntry) {
		t.Fatalf("want ErrInvalidAuthEntry, got %v", err)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("error leaks the secret: %v", err)
	}
}
