package credentials

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgcopy/imgcopy/types"
)

// TestPerUIDAuthFileWithoutXDGRuntimeDir checks skopeo's and podman's login file when
// XDG_RUNTIME_DIR is not set (root in a container or CI job), /run/containers/UID/auth.json:
// credentials stored there by skopeo login are found, imgcopy login writes there, and logout
// also clears an entry an earlier imgcopy login left in ~/.config/containers/auth.json.
func TestPerUIDAuthFileWithoutXDGRuntimeDir(t *testing.T) {
	e := setupEnv(t)
	t.Setenv("XDG_RUNTIME_DIR", "")
	perUID := perUIDAuthFile()
	writeFile(t, perUID, `{"auths":{"reg.example":{"auth":"`+b64("skopeo:pw")+`"}}}`, 0o600)
	got, err := Lookup(context.Background(), nil, "reg.example", "team/app")
	if err != nil || got != (types.DockerAuthConfig{Username: "skopeo", Password: "pw"}) {
		t.Fatalf("lookup of what skopeo login stored: %+v, %v", got, err)
	}

	path, err := Login(nil, "other.example", types.DockerAuthConfig{Username: "u", Password: "p"})
	if err != nil || path != perUID {
		t.Fatalf("login wrote %s (%v), want %s", path, err, perUID)
	}

	config := filepath.Join(e.config, "containers", "auth.json")
	writeFile(t, config, `{"auths":{"old.example":{"auth":"`+b64("o:o")+`"},"other.example":{"auth":"`+b64("x:y")+`"}}}`, 0o600)
	if _, err := Logout(nil, "old.example"); err != nil {
		t.Fatalf("logout of an entry in %s: %v", config, err)
	}
	if _, err := Logout(nil, "other.example"); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"old.example", "other.example"} {
		if got, err := Lookup(context.Background(), nil, host, ""); err != nil || got != (types.DockerAuthConfig{}) {
			t.Errorf("after logout, %s still has %+v (%v)", host, got, err)
		}
	}
	if _, err := Logout(nil, "old.example"); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("second logout: %v, want ErrNotLoggedIn", err)
	}
	if _, err := LogoutAll(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := Lookup(context.Background(), nil, "reg.example", ""); err != nil || got != (types.DockerAuthConfig{}) {
		t.Errorf("after logout --all, reg.example still has %+v (%v)", got, err)
	}
	if _, err := os.Stat(perUID); err != nil {
		t.Error(err)
	}
}
