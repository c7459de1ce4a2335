package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

func TestLoginLogout(t *testing.T) {
	cases := []struct {
		name     string
		existing string // initial content of the written file; "" = absent
		sys      func(root string) *types.SystemContext
		env      func(t *testing.T, root string)
		wantPath func(e testEnv) string
		host     string
		auth     types.DockerAuthConfig
	}{
		{
			name:     "default runtime path, new file",
			wantPath: func(e testEnv) string { return filepath.Join(e.runtime, "containers", "auth.json") },
			host:     "reg.example:5000",
			auth:     types.DockerAuthConfig{Username: "u", Password: "p"},
		},
		{
			name:     "skopeo's per-UID path without XDG_RUNTIME_DIR",
			env:      func(t *testing.T, _ string) { t.Setenv("XDG_RUNTIME_DIR", "") },
			wantPath: func(e testEnv) string { return perUIDAuthFile() },
			host:     "reg.example",
			auth:     types.DockerAuthConfig{Username: "u", Password: "p"},
		},
		{
			name: "config path without XDG_RUNTIME_DIR when the per-UID directory cannot be made",
			env: func(t *testing.T, root string) {
				t.Setenv("XDG_RUNTIME_DIR", "")
				writeFile(t, filepath.Join(root, "notadir"), "", 0o600)
				perUIDAuthFile = func() string { return filepath.Join(root, "notadir", "containers", "0", "auth.json") }
			},
			wantPath: func(e testEnv) string { return filepath.Join(e.config, "containers", "auth.json") },
			host:     "reg.example",
			auth:     types.DockerAuthConfig{Username: "u", Password: "p"},
		},
		{
			name:     "explicit AuthFilePath preserves other entries and fields",
			existing: `{"auths":{"other.example":{"auth":"` + b64("o:o") + `"},"reg.example/ns":{"auth":"` + b64("n:n") + `"}},"credHelpers":{"x":"y"}}`,
			sys: func(root string) *types.SystemContext {
				return &types.SystemContext{AuthFilePath: filepath.Join(root, "a", "auth.json")}
			},
			wantPath: func(e testEnv) string { return filepath.Join(filepath.Dir(e.home), "a", "auth.json") },
			host:     "reg.example",
			auth:     types.DockerAuthConfig{IdentityToken: "tok"},
		},
		{
			name:     "REGISTRY_AUTH_FILE and docker hub spelling replaced",
			existing: `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("old:old") + `"}}}`,
			env: func(t *testing.T, root string) {
				t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(root, "env.json"))
			},
			wantPath: func(e testEnv) string { return filepath.Join(filepath.Dir(e.home), "env.json") },
			host:     "registry-1.docker.io",
			auth:     types.DockerAuthConfig{Username: "new", Password: "pw"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setupEnv(t)
			root := filepath.Dir(e.home)
			if tc.env != nil {
				tc.env(t, root)
			}
			var sys *types.SystemContext
			if tc.sys != nil {
				sys = tc.sys(root)
			}
			want := tc.wantPath(e)
			if tc.existing != "" {
				writeFile(t, want, tc.existing, 0o600)
			}
			before := readTop(t, want)

			path, err := Login(sys, tc.host, tc.auth)
			if err != nil {
				t.Fatal(err)
			}
			if path != want {
				t.Fatalf("path %s, want %s", path, want)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, want 0600", st.Mode().Perm())
			}
			got, err := Lookup(context.Background(), sys, tc.host, "some/repo")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.auth {
				t.Fatalf("lookup after login: got %+v, want %+v", got, tc.auth)
			}
			after := readTop(t, path)
			for k := range before {
				if _, ok := after[k]; !ok {
					t.Fatalf("field %q lost by Login", k)
				}
			}
			assertOtherAuthsKept(t, before, after, tc.host)

			if _, err := Logout(sys, tc.host); err != nil {
				t.Fatal(err)
			}
			got, err = Lookup(context.Background(), sys, tc.host, "")
			if err != nil {
				t.Fatal(err)
			}
			if got != (types.DockerAuthConfig{}) {
				t.Fatalf("lookup after logout: got %+v", got)
			}
			assertOtherAuthsKept(t, before, readTop(t, path), tc.host)
			if _, err := Logout(sys, tc.host); !errors.Is(err, ErrNotLoggedIn) {
				t.Fatalf("second logout: want ErrNotLoggedIn, got %v", err)
			}
		})
	}
}

func TestLoginRejectsMalformedFile(t *testing.T) {
	e := setupEnv(t)
	path := filepath.Join(e.runtime, "containers", "auth.json")
	writeFile(t, path, `{"auths":`, 0o600)
	if _, err := Login(nil, "reg.example", types.DockerAuthConfig{Username: "u", Password: "p"}); !errors.Is(err, ErrInvalidAuthFile) {
		t.Fatalf("want ErrInvalidAuthFile, got %v", err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != `{"auths":` {
		t.Fatalf("malformed file was overwritten: %q", b)
	}
}

func readTop(t *testing.T, path string) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// assertOtherAuthsKept checks every auths key not naming host itself survived unchanged.
func assertOtherAuthsKept(t *testing.T, before, after map[string]json.RawMessage, host string) {
	t.Helper()
	var b, a map[string]json.RawMessage
	if raw, ok := before["auths"]; ok {
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
	}
	if err := json.Unmarshal(after["auths"], &a); err != nil {
		t.Fatal(err)
	}
	for k, v := range b {
		if kh, kp := parseKey(k); kh == normalizeHost(host) && kp == "" {
			continue
		}
		if compact(t, a[k]) != compact(t, v) {
			t.Fatalf("auths[%q] changed from %s to %s", k, v, a[k])
		}
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var buf bytes.Buffer
	if len(raw) == 0 {
		return ""
	}
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
