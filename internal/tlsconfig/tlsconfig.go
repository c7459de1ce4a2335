// Package tlsconfig builds the TLS client configuration for a registry host from the system
// roots and the certs.d directories that podman, skopeo and Docker share.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
)

var (
	// ErrInvalidCertificate is types.ErrInvalidCertificate, returned (wrapped, naming the file)
	// when a CA file holds no PEM certificate or a client certificate/key pair cannot be loaded.
	ErrInvalidCertificate = types.ErrInvalidCertificate
	// ErrUnpairedClientCert is types.ErrUnpairedClientCert, returned (wrapped, naming the file)
	// when a *.cert file has no matching *.key file or the other way round.
	ErrUnpairedClientCert = types.ErrUnpairedClientCert
)

// maxCertFileSize caps each file read from a certs.d directory.
const maxCertFileSize = 1 << 20

// The system-wide certs.d roots, searched before and after the per-user one; variables so
// tests can point them at temporary directories.
var (
	containersCertsDir = "/etc/containers/certs.d"
	dockerCertsDir     = "/etc/docker/certs.d"
	// statDir is os.Stat; tests replace it to see a directory they may not read (they run as
	// root, whom permissions do not stop).
	statDir = os.Stat
)

// ForHost builds the TLS config for host ("host:port"): system roots plus the *.crt CAs and
// *.cert/*.key client pairs of its certs.d directory. sys.CertDir replaces the search; else
// the first existing one of /etc/containers/certs.d/HOST, ${XDG_CONFIG_HOME:-~/.config}/
// containers/certs.d/HOST and /etc/docker/certs.d/HOST is used, as containers/image does.
// sys.InsecureSkipTLSVerify == OptionalBoolTrue disables certificate verification.
func ForHost(sys *types.SystemContext, host string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if sys != nil && sys.InsecureSkipTLSVerify == types.OptionalBoolTrue {
		cfg.InsecureSkipVerify = true // explicitly requested with --tls-verify=false
	}
	dir, err := certDir(sys, host)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return cfg, nil
	}
	logrus.WithFields(logrus.Fields{"registry": host, "dir": dir}).Debug("loading certs.d directory")
	if err := loadDir(cfg, dir); err != nil {
		return nil, err
	}
	return cfg, nil
}

// dirError marks err, a certificate directory that cannot be used, as the caller's to fix
// (types.ClassUsage, exit code 2), keeping its cause for errors.Is/As.
func dirError(err error, format string, args ...any) error {
	return &certDirError{err: errors.Wrapf(err, format, args...)}
}

// certDirError is a certificate directory or file that cannot be read. It is not a mistake on
// the command line (types.ErrUsage), but, like a broken auth file, the user's to fix.
type certDirError struct{ err error }

func (e *certDirError) Error() string { return e.err.Error() }

// Unwrap returns the cause.
func (e *certDirError) Unwrap() error { return e.err }

// ErrorClass implements types.ClassedError: ClassUsage.
func (e *certDirError) ErrorClass() types.ErrorClass { return types.ClassUsage }

// certDir returns the directory to load for host, "" when there is none.
func certDir(sys *types.SystemContext, host string) (string, error) {
	if sys != nil && sys.CertDir != "" {
		// A directory the user named that is not there is a typo or a missing mount: going on
		// without it would blame the registry's certificate instead (skopeo goes on).
		if _, err := os.Stat(sys.CertDir); err != nil {
			return "", dirError(err, "using certificate directory %s", sys.CertDir)
		}
		return sys.CertDir, nil
	}
	if host == "" || strings.ContainsAny(host, `/\`) || host == "." || host == ".." {
		return "", nil // not a registry host; never look outside certs.d
	}
	var candidates []string
	candidates = append(candidates, filepath.Join(containersCertsDir, host))
	if d := userCertsDir(); d != "" {
		candidates = append(candidates, filepath.Join(d, host))
	}
	candidates = append(candidates, filepath.Join(dockerCertsDir, host))
	for _, d := range candidates {
		st, err := statDir(d)
		switch {
		case err == nil && st.IsDir():
			return d, nil
		case err == nil, errors.Is(err, os.ErrNotExist):
			continue
		case errors.Is(err, os.ErrPermission):
			// A certs.d root this user may not read (/etc/docker is often 0700) holds nothing
			// for them; failing would stop every registry access. containers/image skips it too.
			logrus.WithFields(logrus.Fields{"registry": host, "dir": d}).WithError(err).Debug("certs.d directory not accessible; skipping it")
			continue
		default:
			return "", dirError(err, "checking certs.d directory %s", d)
		}
	}
	return "", nil
}

// userCertsDir is ${XDG_CONFIG_HOME:-~/.config}/containers/certs.d, "" when unknown.
func userCertsDir() string {
	base := os.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return ""
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "containers", "certs.d")
}

// loadDir adds the CAs and client certificates found in dir to cfg.
func loadDir(cfg *tls.Config, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return dirError(err, "reading certs.d directory %s", dir)
	}
	names := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() {
			names[e.Name()] = true
		}
	}
	if err := loadCAs(cfg, dir, sortedWithSuffix(names, ".crt")); err != nil {
		return err
	}
	return loadClientPairs(cfg, dir, names)
}

// loadCAs appends the certificates of each *.crt file to a copy of the system roots.
func loadCAs(cfg *tls.Config, dir string, files []string) error {
	if len(files) == 0 {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		logrus.WithError(err).Debug("system certificate pool unavailable, using certs.d CAs only")
		pool = x509.NewCertPool()
	}
	for _, name := range files {
		path := filepath.Join(dir, name)
		b, err := readCapped(path)
		if err != nil {
			return err
		}
		if !pool.AppendCertsFromPEM(b) {
			return errors.Wrapf(ErrInvalidCertificate, "no PEM certificate in CA file %s", path)
		}
	}
	cfg.RootCAs = pool
	return nil
}

// loadClientPairs loads every NAME.cert with its NAME.key.
func loadClientPairs(cfg *tls.Config, dir string, names map[string]bool) error {
	for _, key := range sortedWithSuffix(names, ".key") {
		if cert := strings.TrimSuffix(key, ".key") + ".cert"; !names[cert] {
			return errors.Wrapf(ErrUnpairedClientCert, "key %s has no certificate %s", filepath.Join(dir, key), cert)
		}
	}
	for _, cert := range sortedWithSuffix(names, ".cert") {
		key := strings.TrimSuffix(cert, ".cert") + ".key"
		if !names[key] {
			return errors.Wrapf(ErrUnpairedClientCert, "certificate %s has no key %s", filepath.Join(dir, cert), key)
		}
		certPEM, err := readCapped(filepath.Join(dir, cert))
		if err != nil {
			return err
		}
		keyPEM, err := readCapped(filepath.Join(dir, key))
		if err != nil {
			return err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// The error from crypto/tls describes the PEM structure, never the key material.
			return errors.Wrapf(ErrInvalidCertificate, "loading client certificate %s: %v", filepath.Join(dir, cert), err)
		}
		cfg.Certificates = append(cfg.Certificates, pair)
	}
	return nil
}

// sortedWithSuffix lists the names ending in suffix, sorted for a deterministic order.
func sortedWithSuffix(names map[string]bool, suffix string) []string {
	var res []string
	for n := range names {
		if strings.HasSuffix(n, suffix) {
			res = append(res, n)
		}
	}
	sort.Strings(res)
	return res
}

// readCapped reads a small certificate or key file.
func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, dirError(err, "opening %s", path)
	}
	defer f.Close()
	b, err := iolimits.ReadAtMost(f, maxCertFileSize)
	if err != nil {
		return nil, dirError(err, "reading %s", path)
	}
	return b, nil
}
