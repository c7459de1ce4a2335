// Package credentials finds, stores and removes registry credentials in the auth files and
// credential helpers that podman, skopeo and Docker use, so imgcopy shares their logins.
package credentials

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/types"
)

var (
	// ErrInvalidAuthFile is types.ErrInvalidAuthFile, returned (wrapped, naming the file) when
	// an auth file is not valid JSON of the expected shape or is too large.
	ErrInvalidAuthFile = types.ErrInvalidAuthFile
	// ErrInvalidAuthEntry is types.ErrInvalidAuthEntry, returned (wrapped, naming the file and
	// key) when an "auth" value is not base64 of "user:password".
	ErrInvalidAuthEntry = types.ErrInvalidAuthEntry
	// ErrNotLoggedIn is types.ErrNotLoggedIn, returned (wrapped) by Logout when the auth file
	// has no entry for the host.
	ErrNotLoggedIn = types.ErrNotLoggedIn
)

// maxAuthFileSize caps how much of an auth file is read.
const maxAuthFileSize = 1 << 20

// authFile is one file in the search order.
type authFile struct {
	path string
	// legacy marks ~/.dockercfg, whose top level is the auths map itself.
	legacy bool
}

// Lookup finds credentials for registry host (e.g. "127.0.0.1:5000", "docker.io") and
// repository path ("library/busybox"), most specific first: sys.NoCreds and
// sys.DockerAuthConfig; then sys.AuthFilePath alone when set; else $REGISTRY_AUTH_FILE,
// ${XDG_RUNTIME_DIR}/containers/auth.json (without XDG_RUNTIME_DIR on Linux, skopeo's
// /run/containers/UID/auth.json), ~/.config/containers/auth.json,
// $DOCKER_CONFIG/config.json or ~/.docker/config.json and ~/.dockercfg. Within a file,
// credHelpers[host] comes first, then the most specific "auths" key, then credsStore.
// The zero value means anonymous access. Missing files are skipped; a broken file is an error.
// A credential helper is stopped when ctx ends, or when it does not answer within a minute.
func Lookup(ctx context.Context, sys *types.SystemContext, host, repo string) (types.DockerAuthConfig, error) {
	if sys != nil && sys.NoCreds {
		return types.DockerAuthConfig{}, nil
	}
	if sys != nil && sys.DockerAuthConfig != nil {
		return *sys.DockerAuthConfig, nil
	}
	var helperErr error
	for _, f := range searchOrder(sys) {
		auth, found, err := lookupInFile(ctx, f, host, repo)
		if err != nil {
			var he *helperError
			if !errors.As(err, &he) || ctx.Err() != nil {
				return types.DockerAuthConfig{}, err
			}
			// A broken helper must not make anonymous or file-based access impossible: keep
			// looking and report the failure only when nothing else is found.
			logrus.WithFields(logrus.Fields{"registry": host, "helper": he.helper}).Debug("credential helper failed")
			if helperErr == nil {
				helperErr = err
			}
			continue
		}
		if found {
			logrus.WithFields(logrus.Fields{"registry": host, "file": f.path}).Debug("using stored credentials")
			return auth, nil
		}
	}
	if helperErr != nil {
		return types.DockerAuthConfig{}, helperErr
	}
	logrus.WithField("registry", host).Debug("no stored credentials, using anonymous access")
	return types.DockerAuthConfig{}, nil
}

// searchOrder lists the auth files to consult, most specific first.
func searchOrder(sys *types.SystemContext) []authFile {
	if sys != nil && sys.AuthFilePath != "" {
		return []authFile{{path: sys.AuthFilePath}}
	}
	var files []authFile
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		files = append(files, authFile{path: p})
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, authFile{path: filepath.Join(d, "containers", "auth.json")})
	} else if p := perUIDAuthFile(); p != "" {
		files = append(files, authFile{path: p})
	}
	if d := configHome(); d != "" {
		files = append(files, authFile{path: filepath.Join(d, "containers", "auth.json")})
	}
	home, _ := os.UserHomeDir()
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, authFile{path: filepath.Join(d, "config.json")})
	} else if home != "" {
		files = append(files, authFile{path: filepath.Join(home, ".docker", "config.json")})
	}
	if home != "" {
		files = append(files, authFile{path: filepath.Join(home, ".dockercfg"), legacy: true})
	}
	return files
}

// perUIDAuthFile is where skopeo and podman log in on Linux when XDG_RUNTIME_DIR is not set
// (root in a container, a CI job): /run/containers/UID/auth.json; "" elsewhere. A variable
// so that tests can move it.
var perUIDAuthFile = func() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	return fmt.Sprintf("/run/containers/%d/auth.json", os.Getuid())
}

// configHome is $XDG_CONFIG_HOME or ~/.config, "" when neither is known.
func configHome() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".config")
}

// lookupInFile consults one auth file; a missing file finds nothing.
func lookupInFile(ctx context.Context, f authFile, host, repo string) (types.DockerAuthConfig, bool, error) {
	cfg, err := readAuthFile(f)
	if err != nil {
		return types.DockerAuthConfig{}, false, err
	}
	if cfg == nil {
		return types.DockerAuthConfig{}, false, nil
	}
	if name, ok := helperForHost(cfg.CredHelpers, host); ok {
		return cachedHelperGet(ctx, name, host)
	}
	if key, entry, ok := bestAuthEntry(cfg.Auths, host, repo); ok {
		auth, err := entry.decode()
		if err != nil {
			return types.DockerAuthConfig{}, false, errors.Wrapf(err, "reading key %q in %s", key, f.path)
		}
		if auth != (types.DockerAuthConfig{}) {
			return auth, true, nil
		}
		// An empty entry is the placeholder Docker writes next to a credsStore: fall through.
	}
	if cfg.CredsStore != "" {
		return cachedHelperGet(ctx, cfg.CredsStore, host)
	}
	return types.DockerAuthConfig{}, false, nil
}
