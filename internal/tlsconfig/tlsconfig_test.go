package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// pki is a generated CA with one server certificate (for 127.0.0.1) and one client certificate.
type pki struct {
	caPEM        []byte
	serverCert   tls.Certificate
	clientPEM    []byte
	clientKeyPEM []byte
	caPool       *x509.CertPool
	otherCAPEM   []byte // an unrelated CA
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, tmpl, parent *x509.Certificate, pub any, priv *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	c, p := sign(t, tmpl, tmpl, &k.PublicKey, k)
	return c, k, p
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, caKey, caPEM := newCA(t, "imgcopy test CA")
	_, _, otherPEM := newCA(t, "unrelated CA")

	sk := newKey(t)
	_, serverPEM := sign(t, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &sk.PublicKey, caKey)
	serverCert, err := tls.X509KeyPair(serverPEM, keyPEM(t, sk))
	if err != nil {
		t.Fatal(err)
	}

	ck := newKey(t)
	_, clientPEM := sign(t, &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, &ck.PublicKey, caKey)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &pki{caPEM: caPEM, serverCert: serverCert, clientPEM: clientPEM, clientKeyPEM: keyPEM(t, ck), caPool: pool, otherCAPEM: otherPEM}
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// startServer runs an HTTPS server on 127.0.0.1 with the PKI's server certificate; with
// requireClient it demands a client certificate signed by the same CA.
func startServer(t *testing.T, p *pki, requireClient bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.serverCert}, MinVersion: tls.VersionTLS12}
	if requireClient {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = p.caPool
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func hostOf(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func get(cfg *tls.Config, u string) error {
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestForHostHandshake(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	plain := startServer(t, p, false)
	mtls := startServer(t, p, true)
	cases := []struct {
		name     string
		srv      *httptest.Server
		files    map[string][]byte
		insecure bool
		wantOK   bool
	}{
		{name: "no CA fails", srv: plain},
		{name: "unrelated CA fails", srv: plain, files: map[string][]byte{"ca.crt": p.otherCAPEM}},
		{name: "certs.d CA succeeds", srv: plain, files: map[string][]byte{"ca.crt": p.caPEM}, wantOK: true},
		{name: "one of several CAs succeeds", srv: plain, files: map[string][]byte{"a.crt": p.otherCAPEM, "b.crt": p.caPEM}, wantOK: true},
		{name: "insecure skips verification", srv: plain, insecure: true, wantOK: true},
		{name: "mTLS without client cert fails", srv: mtls, files: map[string][]byte{"ca.crt": p.caPEM}},
		{
			name:   "mTLS with client pair succeeds",
			srv:    mtls,
			files:  map[string][]byte{"ca.crt": p.caPEM, "client.cert": p.clientPEM, "client.key": p.clientKeyPEM},
			wantOK: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "certs")
			writeFiles(t, dir, tc.files)
			sys := &types.SystemContext{CertDir: dir}
			if tc.insecure {
				sys.InsecureSkipTLSVerify = types.OptionalBoolTrue
			}
			cfg, err := ForHost(sys, hostOf(t, tc.srv))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion != tls.VersionTLS12 {
				t.Fatalf("MinVersion %x", cfg.MinVersion)
			}
			err = get(cfg, tc.srv.URL)
			if tc.wantOK && err != nil {
				t.Fatalf("handshake failed: %v", err)
			}
			if !tc.wantOK && err == nil {
				t.Fatal("handshake succeeded, want failure")
			}
		})
	}
}

func TestForHostErrors(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cases := []struct {
		name     string
		files    map[string][]byte
		wantErr  error
		wantName string // file name the error must mention
	}{
		{name: "cert without key", files: map[string][]byte{"client.cert": p.clientPEM}, wantErr: ErrUnpairedClientCert, wantName: "client.cert"},
		{name: "key without cert", files: map[string][]byte{"client.key": p.clientKeyPEM}, wantErr: ErrUnpairedClientCert, wantName: "client.key"},
		{name: "garbage CA", files: map[string][]byte{"bad.crt": []byte("not a certificate")}, wantErr: ErrInvalidCertificate, wantName: "bad.crt"},
		{name: "mismatched pair", files: map[string][]byte{"c.cert": p.caPEM, "c.key": p.clientKeyPEM}, wantErr: ErrInvalidCertificate, wantName: "c.cert"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			_, err := ForHost(&types.SystemContext{CertDir: dir}, "reg.example:5000")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("want %v, got %v", tc.wantErr, err)
			}
			if !strings.Contains(err.Error(), tc.wantName) {
				t.Fatalf("error %q does not name %s", err, tc.wantName)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----\n") {
				t.Fatalf("error leaks key material: %v", err)
			}
		})
	}
}

func TestForHostDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ForHost(nil, "no-such-host.invalid:5000")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs != nil || cfg.InsecureSkipVerify || len(cfg.Certificates) != 0 || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
	for _, host := range []string{"", "..", "a/../../etc"} {
		if d, err := certDir(nil, host); err != nil || d != "" {
			t.Fatalf("certDir(%q) = %q, %v; want nothing", host, d, err)
		}
	}
}

// TestCertDirSearchOrder points the system roots at temp dirs; it changes package variables
// and the environment, so it does not run in parallel.
func TestCertDirSearchOrder(t *testing.T) {
	p := newPKI(t)
	srv := startServer(t, p, false)
	host := hostOf(t, srv)
	root := t.TempDir()
	oldC, oldD := containersCertsDir, dockerCertsDir
	t.Cleanup(func() { containersCertsDir, dockerCertsDir = oldC, oldD })
	containersCertsDir = filepath.Join(root, "etc-containers")
	dockerCertsDir = filepath.Join(root, "etc-docker")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(root, "xdg"))
	userDir := filepath.Join(root, "xdg", "containers", "certs.d", host)

	cases := []struct {
		name    string
		setup   func(t *testing.T)
		wantDir string
		wantOK  bool
	}{
		{name: "none", wantDir: ""},
		{
			name: "docker dir",
			setup: func(t *testing.T) {
				writeFiles(t, filepath.Join(dockerCertsDir, host), map[string][]byte{"ca.crt": p.caPEM})
			},
			wantDir: filepath.Join(dockerCertsDir, host), wantOK: true,
		},
		{
			name:    "user dir before docker dir",
			setup:   func(t *testing.T) { writeFiles(t, userDir, map[string][]byte{"ca.crt": p.caPEM}) },
			wantDir: userDir, wantOK: true,
		},
		{
			name: "containers dir first, even when it does not help",
			setup: func(t *testing.T) {
				writeFiles(t, filepath.Join(containersCertsDir, host), map[string][]byte{"ca.crt": p.otherCAPEM})
			},
			wantDir: filepath.Join(containersCertsDir, host),
		},
	}
	// Cases build on each other: each adds a directory earlier in the search order.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			d, err := certDir(nil, host)
			if err != nil || d != tc.wantDir {
				t.Fatalf("certDir = %q, %v; want %q", d, err, tc.wantDir)
			}
			cfg, err := ForHost(nil, host)
			if err != nil {
				t.Fatal(err)
			}
			if err := get(cfg, srv.URL); (err == nil) != tc.wantOK {
				t.Fatalf("handshake error %v, want ok=%v", err, tc.wantOK)
			}
		})
	}
}

// TestUnusableCertDir checks that a certificate directory that cannot be used is the user's
// mistake to fix (ClassUsage, exit code 2), named in the error: a --cert-dir that does not
// exist (a typo would otherwise surface as the registry's "unknown authority"), or one that is
// a file.
func TestUnusableCertDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	file := filepath.Join(root, "ca.crt")
	writeFiles(t, root, map[string][]byte{"ca.crt": []byte("x")})
	cases := []struct {
		name    string
		dir     string
		wantErr error
	}{
		{"missing", filepath.Join(root, "no-such-dir"), os.ErrNotExist},
		{"a file", file, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ForHost(&types.SystemContext{CertDir: tc.dir}, "reg.example:5000")
			if err == nil {
				t.Fatal("no error")
			}
			if types.Classify(err) != types.ClassUsage || !strings.Contains(err.Error(), tc.dir) {
				t.Fatalf("want a usage error naming %s, got %v (class %v)", tc.dir, err, types.Classify(err))
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("want %v, got %v", tc.wantErr, err)
			}
		})
	}
}

// TestCertDirSkipsUnreadableRoot checks that a certs.d root this user may not read (tests run
// as root, so statDir pretends) is skipped, as containers/image does, rather than failing every
// registry access; other errors stay errors. It changes package variables: not parallel.
func TestCertDirSkipsUnreadableRoot(t *testing.T) {
	p := newPKI(t)
	root := t.TempDir()
	oldC, oldD, oldStat := containersCertsDir, dockerCertsDir, statDir
	t.Cleanup(func() { containersCertsDir, dockerCertsDir, statDir = oldC, oldD, oldStat })
	containersCertsDir = filepath.Join(root, "etc-containers")
	dockerCertsDir = filepath.Join(root, "etc-docker")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(root, "xdg"))
	host := "reg.example:5000"
	writeFiles(t, filepath.Join(dockerCertsDir, host), map[string][]byte{"ca.crt": p.caPEM})
	var denied error
	statDir = func(name string) (os.FileInfo, error) {
		if strings.HasPrefix(name, containersCertsDir) {
			return nil, &os.PathError{Op: "stat", Path: name, Err: denied}
		}
		return os.Stat(name)
	}
	denied = os.ErrPermission
	if d, err := certDir(nil, host); err != nil || d != filepath.Join(dockerCertsDir, host) {
		t.Fatalf("certDir = %q, %v; want the docker dir after the unreadable one", d, err)
	}
	denied = errors.New("input/output error")
	if _, err := certDir(nil, host); types.Classify(err) != types.ClassUsage || !strings.Contains(err.Error(), containersCertsDir) {
		t.Fatalf("want a usage error naming %s, got %v", containersCertsDir, err)
	}
}

// TestCertDirOfIPv6Registry checks that an IPv6 registry's certs.d directory is named as the
// reference writes the registry, brackets included ("[::1]:5000"), as containers/image names
// it, with a CA and a client certificate pair. It changes package variables: not parallel.
func TestCertDirOfIPv6Registry(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	p := newPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.Listener.Close()
	srv.Listener = l
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.serverCert}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.caPool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := hostOf(t, srv)
	if !strings.HasPrefix(host, "[::1]:") {
		t.Fatalf("server host %q", host)
	}
	root := t.TempDir()
	oldC := containersCertsDir
	t.Cleanup(func() { containersCertsDir = oldC })
	containersCertsDir = root
	writeFiles(t, filepath.Join(root, host), map[string][]byte{"ca.crt": p.caPEM, "client.cert": p.clientPEM, "client.key": p.clientKeyPEM})
	cfg, err := ForHost(nil, host)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(cfg, srv.URL); err != nil {
		t.Fatalf("handshake with %s using certs.d/%s: %v", srv.URL, host, err)
	}
}
