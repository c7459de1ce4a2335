package credentials

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/types"
)

// Login stores auth for host in a containers auth.json file and returns its path: sys.AuthFilePath
// when set, else $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json, else (on
// Linux, as skopeo) /run/containers/UID/auth.json when its directory can be made, else
// ~/.config/containers/auth.json. Other entries and fields of the file are preserved; the file
// is replaced atomically with mode 0600.
func Login(sys *types.SystemContext, host string, auth types.DockerAuthConfig) (string, error) {
	if host == "" || strings.ContainsAny(host, "/ ") {
		return "", errors.Errorf("storing credentials: %q is not a registry host", host)
	}
	path, err := writePath(sys)
	if err != nil {
		return "", err
	}
	entry := authEntry{IdentityToken: auth.IdentityToken}
	if auth.Username != "" || auth.Password != "" {
		entry.Auth = encodeAuth(auth.Username, auth.Password)
	}
	err = editAuths(path, func(auths map[string]json.RawMessage) error {
		for _, k := range matchingHostKeys(auths, host) {
			delete(auths, k) // drop other spellings of the same registry so the new entry is used
		}
		b, err := json.Marshal(entry)
		if err != nil {
			return err
		}
		auths[normalizeHost(host)] = b
		return nil
	})
	if err != nil {
		return "", errors.Wrapf(err, "storing credentials for %s", host)
	}
	return path, nil
}

// Logout removes the entries for host (any spelling, but not per-repository keys) from the file
// Login writes, and returns its path. It fails with ErrNotLoggedIn when there is none.
func Logout(sys *types.SystemContext, host string) (string, error) {
	path, err := writePath(sys)
	if err != nil {
		return "", err
	}
	removed := ""
	for _, p := range append([]string{path}, otherDefaultPaths(sys, path)...) {
		err = editAuths(p, func(auths map[string]json.RawMessage) error {
			keys := matchingHostKeys(auths, host)
			if len(keys) == 0 {
				return errors.Wrapf(ErrNotLoggedIn, "no entry for %s in %s", host, p)
			}
			for _, k := range keys {
				delete(auths, k)
			}
			return nil
		})
		switch {
		case err == nil:
			if removed == "" {
				removed = p
			}
		case !errors.Is(err, ErrNotLoggedIn):
			return "", errors.Wrapf(err, "removing credentials for %s", host)
		}
	}
	if removed == "" {
		return "", errors.Wrapf(ErrNotLoggedIn, "removing credentials for %s: no entry for %s in %s", host, host, path)
	}
	return removed, nil
}

// otherDefaultPaths lists the existing files that Login wrote, or skopeo's login writes, when
// XDG_RUNTIME_DIR is not set, other than path: /run/containers/UID/auth.json and
// ~/.config/containers/auth.json. Logout cleans both, so that an entry in the one Login does
// not write now cannot stay in force.
func otherDefaultPaths(sys *types.SystemContext, path string) []string {
	if (sys != nil && sys.AuthFilePath != "") || os.Getenv("REGISTRY_AUTH_FILE") != "" || os.Getenv("XDG_RUNTIME_DIR") != "" {
		return nil
	}
	var out []string
	for _, p := range []string{perUIDAuthFile(), filepath.Join(configHome(), "containers", "auth.json")} {
		if _, err := os.Stat(p); p != "" && p != path && err == nil {
			out = append(out, p)
		}
	}
	return out
}

// LogoutAll removes every entry of the "auths" map from the file Login writes, keeping its
// other fields, and returns its path. A missing file is left missing.
func LogoutAll(sys *types.SystemContext) (string, error) {
	path, err := writePath(sys)
	if err != nil {
		return "", err
	}
	for _, p := range append([]string{path}, otherDefaultPaths(sys, path)...) {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		err = editAuths(p, func(auths map[string]json.RawMessage) error {
			clear(auths)
			return nil
		})
		if err != nil {
			return "", errors.Wrap(err, "removing all credentials")
		}
	}
	return path, nil
}

// writePath is the auth file Login and Logout edit.
func writePath(sys *types.SystemContext) (string, error) {
	if sys != nil && sys.AuthFilePath != "" {
		return sys.AuthFilePath, nil
	}
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		return p, nil
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "containers", "auth.json"), nil
	}
	// skopeo and podman write /run/containers/UID/auth.json then; where that cannot be made
	// (a user without XDG_RUNTIME_DIR has no directory of their own in /run) ~/.config.
	if p := perUIDAuthFile(); p != "" && os.MkdirAll(filepath.Dir(p), 0o700) == nil {
		return p, nil
	}
	if d := configHome(); d != "" {
		return filepath.Join(d, "containers", "auth.json"), nil
	}
	return "", errors.New("finding a path for the auth file: neither XDG_RUNTIME_DIR nor a home directory is set")
}

// matchingHostKeys lists the keys of auths naming the whole registry host, sorted.
func matchingHostKeys(auths map[string]json.RawMessage, host string) []string {
	var keys []string
	for k := range auths {
		kh, kp := parseKey(k)
		if kh == normalizeHost(host) && kp == "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// editAuths reads path (a missing file is empty), lets edit change the "auths" map, and writes
// the result back atomically. Unknown fields survive because both levels stay raw JSON.
func editAuths(path string, edit func(map[string]json.RawMessage) error) error {
	top := map[string]json.RawMessage{}
	b, err := readCapped(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(bytes.TrimSpace(b)) > 0:
		if err := json.Unmarshal(b, &top); err != nil {
			return errors.Wrapf(ErrInvalidAuthFile, "parsing %s: %v", path, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := top["auths"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return errors.Wrapf(ErrInvalidAuthFile, "parsing auths in %s: %v", path, err)
		}
	}
	if err := edit(auths); err != nil {
		return err
	}
	raw, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	top["auths"] = raw
	out, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return errors.Wrapf(err, "creating directory for %s", path)
	}
	return atomicfile.WriteFile(path, append(out, '\n'), 0o600)
}
