package docker

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestClientCertRefusalIsNotRetried checks that a registry that ends the TLS handshake because
// it wants a client certificate (none in the certificate directory) fails with
// types.ErrClientCertRefused (a network failure the CLI explains) at once: the handshake
// was retried with back-off, like a connection that broke, though only a certificate helps.
func TestClientCertRefusalIsNotRetried(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	certDir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "https://")
	retries := 2
	sys := &types.SystemContext{NoCreds: true, CertDir: certDir, InsecureSkipTLSVerify: types.OptionalBoolFalse, RetryTimes: &retries}
	_, err := mustParse(t, "//"+host+"/a/b:v1").(types.ManifestDigester).ManifestDigest(testContext(t), sys)
	if !errors.Is(err, types.ErrClientCertRefused) || types.Classify(err) != types.ClassNetwork {
		t.Fatalf("got %v (class %v), want the client certificate refusal (network)", err, types.Classify(err))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a refused client certificate is not retried", n)
	}
}
