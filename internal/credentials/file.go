package credentials

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
)

// fileContents is the part of a containers auth.json or Docker config.json that we read.
type fileContents struct {
	Auths       map[string]authEntry `json:"auths"`
	CredHelpers map[string]string    `json:"credHelpers"`
	CredsStore  string               `json:"credsStore"`
}

// authEntry is one value of the "auths" map.
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	// Username and Password appear in some hand-written and very old Docker files.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// readAuthFile parses f; it returns nil, nil when the file does not exist (or a directory on
// its path is a file).
func readAuthFile(f authFile) (*fileContents, error) {
	b, err := readCapped(f.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, err
	}
	return parseAuthFile(b, f)
}

// parseAuthFile decodes the bytes of auth file f.
func parseAuthFile(b []byte, f authFile) (*fileContents, error) {
	var cfg fileContents
	if len(strings.TrimSpace(string(b))) == 0 {
		return &cfg, nil // podman and Docker treat an empty file as no logins
	}
	if f.legacy {
		if err := json.Unmarshal(b, &cfg.Auths); err != nil {
			return nil, errors.Wrapf(ErrInvalidAuthFile, "parsing %s: %v", f.path, err)
		}
		return &cfg, nil
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, errors.Wrapf(ErrInvalidAuthFile, "parsing %s: %v", f.path, err)
	}
	return &cfg, nil
}

// readCapped reads a whole auth file, at most maxAuthFileSize bytes.
func readCapped(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrapf(err, "opening auth file %s", path)
	}
	defer fh.Close()
	b, err := iolimits.ReadAtMost(fh, maxAuthFileSize)
	if err != nil {
		if errors.Is(err, iolimits.ErrTooLarge) {
			return nil, errors.Wrapf(ErrInvalidAuthFile, "reading %s: %v", path, err)
		}
		return nil, errors.Wrapf(err, "reading auth file %s", path)
	}
	return b, nil
}

// decode turns an entry into credentials; an entry with no secret decodes to the zero value.
func (e authEntry) decode() (types.DockerAuthConfig, error) {
	res := types.DockerAuthConfig{IdentityToken: e.IdentityToken}
	switch {
	case e.Auth != "":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Auth))
		if err != nil {
			// The error from encoding/base64 only names an offset, never the secret.
			return types.DockerAuthConfig{}, errors.Wrapf(ErrInvalidAuthEntry, "decoding base64: %v", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return types.DockerAuthConfig{}, errors.Wrap(ErrInvalidAuthEntry, "decoded auth has no ':' between user and password")
		}
		res.Username, res.Password = user, pass
	case e.Username != "" || e.Password != "":
		res.Username, res.Password = e.Username, e.Password
	}
	return res, nil
}

// encodeAuth is the "auth" value for user and password.
func encodeAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// normalizeHost maps every Docker Hub host name onto "docker.io".
func normalizeHost(host string) string {
	switch strings.ToLower(host) {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return host
}

// parseKey splits an "auths" key into a normalized host and a repository path prefix. URL-style
// keys ("https://index.docker.io/v1/", "http://host:5000") name a whole registry: the URL path is
// an API version, not a repository.
func parseKey(key string) (host, path string) {
	k := key
	isURL := false
	for _, scheme := range []string{"https://", "http://"} {
		if strings.HasPrefix(strings.ToLower(k), scheme) {
			k, isURL = k[len(scheme):], true
			break
		}
	}
	host, path, _ = strings.Cut(k, "/")
	if isURL {
		path = ""
	}
	return normalizeHost(host), strings.Trim(path, "/")
}

// keyMatches reports whether key applies to host/repo, and how specific it is (length of the
// repository prefix; a host-only key scores 0).
func keyMatches(key, host, repo string) (specificity int, ok bool) {
	kh, kp := parseKey(key)
	if kh != normalizeHost(host) {
		return 0, false
	}
	if kp == "" {
		return 0, true
	}
	if repo == kp || strings.HasPrefix(repo, kp+"/") {
		return len(kp), true
	}
	return 0, false
}

// bestAuthEntry picks the most specific key of auths matching host/repo, like containers/image
// pkg/docker/config: "host/ns/repo" before "host/ns" before "host". Among equally specific
// keys the plain form wins over a URL form, then the lexically smallest, so that the choice
// never depends on map order.
func bestAuthEntry(auths map[string]authEntry, host, repo string) (string, authEntry, bool) {
	bestKey, bestSpec, found := "", -1, false
	for key := range auths {
		spec, ok := keyMatches(key, host, repo)
		if !ok {
			continue
		}
		if !found || spec > bestSpec || (spec == bestSpec && keyLess(key, bestKey)) {
			bestKey, bestSpec, found = key, spec, true
		}
	}
	if !found {
		return "", authEntry{}, false
	}
	return bestKey, auths[bestKey], true
}

// keyLess orders equally specific keys: plain before URL-style, then lexically.
func keyLess(a, b string) bool {
	au, bu := strings.Contains(a, "://"), strings.Contains(b, "://")
	if au != bu {
		return !au
	}
	return a < b
}

// helperForHost finds a per-registry credential helper, accepting any spelling of the host.
func helperForHost(helpers map[string]string, host string) (string, bool) {
	if name, ok := helpers[host]; ok && name != "" {
		return name, true
	}
	keys := make([]string, 0, len(helpers))
	for key := range helpers {
		keys = append(keys, key)
	}
	sort.Strings(keys) // deterministic when several spellings of the host are present
	for _, key := range keys {
		if kh, _ := parseKey(key); kh == normalizeHost(host) && helpers[key] != "" {
			return helpers[key], true
		}
	}
	return "", false
}
