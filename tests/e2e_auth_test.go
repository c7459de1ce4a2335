package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// e2eAuthFile writes a containers auth.json holding user:password for host and returns its path.
func e2eAuthFile(t *testing.T, host, user, password string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestE2EAuth pushes and pulls through the library against protected registries: Basic auth
// over TLS with the test CA given as a certs.d directory, and a Bearer token server; the
// credentials come from SystemContext.DockerAuthConfig or from an auth file. Each registry
// then refuses a copy without credentials and one with a wrong password with ErrUnauthorized.
func TestE2EAuth(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{})
	users := map[string]string{"alice": "s3cret"}
	cases := []struct {
		name string
		opts testregistry.Options
	}{
		{"basic-tls", testregistry.Options{TLS: true, BasicAuth: users}},
		{"bearer", testregistry.Options{BearerToken: true, BasicAuth: users}},
		{"bearer-tls", testregistry.Options{TLS: true, BearerToken: true, BasicAuth: users}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, tc.opts)
			ctx := context.Background()
			image := e2eRef(t, "docker://"+reg.Host+"/private/hello:v1")
			sys := func(s types.SystemContext) *types.SystemContext {
				s.CertDir = reg.CertDir
				return &s
			}

			res := e2eCopy(t, image, origin, &copier.Options{DestinationCtx: sys(types.SystemContext{
				DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "s3cret"},
			})})
			if res.ManifestDigest != l.ManifestDigest {
				t.Errorf("pushed %s, want %s", res.ManifestDigest, l.ManifestDigest)
			}
			if tc.opts.BearerToken && !e2eSawAuthScheme(reg, "Bearer") {
				t.Errorf("no request to the registry carried a Bearer token")
			}

			fromFile := sys(types.SystemContext{AuthFilePath: e2eAuthFile(t, reg.Host, "alice", "s3cret")})
			pulled := e2eRef(t, "dir:"+filepath.Join(t.TempDir(), "pulled"))
			if res := e2eCopy(t, pulled, image, &copier.Options{SourceCtx: fromFile}); res.ManifestDigest != l.ManifestDigest {
				t.Errorf("pulled %s, want %s", res.ManifestDigest, l.ManifestDigest)
			}
			e2eCheckSameImage(t, l.Images[0], e2eVerify(t, pulled, nil).Images[0])

			failures := []struct {
				name string
				sys  *types.SystemContext
			}{
				{"no credentials", sys(types.SystemContext{NoCreds: true})},
				{"wrong password", sys(types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "wrong"}})},
				{"wrong password in auth file", sys(types.SystemContext{AuthFilePath: e2eAuthFile(t, reg.Host, "alice", "wrong")})},
			}
			for _, f := range failures {
				dest := e2eRef(t, "docker://"+reg.Host+"/private/other:v1")
				_, err := copier.Image(ctx, dest, origin, &copier.Options{DestinationCtx: f.sys})
				if !errors.Is(err, types.ErrUnauthorized) || !strings.Contains(err.Error(), reg.Host) {
					t.Errorf("push with %s: %v, want ErrUnauthorized naming %s", f.name, err, reg.Host)
				}
				_, err = copier.Image(ctx, e2eRef(t, "dir:"+filepath.Join(t.TempDir(), "d")), image, &copier.Options{SourceCtx: f.sys})
				if !errors.Is(err, types.ErrUnauthorized) || !strings.Contains(err.Error(), reg.Host) {
					t.Errorf("pull with %s: %v, want ErrUnauthorized naming %s", f.name, err, reg.Host)
				}
			}
		})
	}
}

// TestE2EAuthFailureNotRetried checks that a token server refusing the credentials (401) is
// a final answer: the copy fails with ErrUnauthorized after at most one token request per
// scope instead of backing off and asking again.
func TestE2EAuthFailureNotRetried(t *testing.T) {
	t.Parallel()
	_, origin := e2eFixture(t, fixtures.Options{})
	reg := testregistry.Start(t, testregistry.Options{BearerToken: true, BasicAuth: map[string]string{"alice": "s3cret"}})
	dest := e2eRef(t, "docker://"+reg.Host+"/private/hello:v1")
	_, err := copier.Image(context.Background(), dest, origin, &copier.Options{
		DestinationCtx: &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "wrong"}},
	})
	if !errors.Is(err, types.ErrUnauthorized) {
		t.Fatalf("push with a wrong password: %v, want ErrUnauthorized", err)
	}
	tokenRequests := 0
	for _, r := range reg.Requests() {
		if strings.HasPrefix(r.Path, "/auth/") {
			tokenRequests++
		}
	}
	// One per scope the copy needs; the engine may check two blobs concurrently.
	if tokenRequests > 2 {
		t.Errorf("the token server was asked %d times after refusing the credentials; a 401 must not be retried", tokenRequests)
	}
}

// e2eSawAuthScheme reports whether the registry received a request with that Authorization scheme.
func e2eSawAuthScheme(reg *testregistry.Registry, scheme string) bool {
	for _, r := range reg.Requests() {
		if r.AuthScheme == scheme {
			return true
		}
	}
	return false
}

// TestE2EUntrustedCA copies to and from a TLS registry whose CA is not trusted: both fail
// with a certificate verification error, and nothing is pushed; with the CA in a certs.d
// directory both work.
func TestE2EUntrustedCA(t *testing.T) {
	t.Parallel()
	_, origin := e2eFixture(t, fixtures.Options{})
	reg := testregistry.Start(t, testregistry.Options{TLS: true})
	ctx := context.Background()
	image := e2eRef(t, "docker://"+reg.Host+"/tls/hello:v1")
	// An empty certs.d directory: neither the system roots nor any directory on this machine
	// know the CA generated for the test.
	untrusted := &types.SystemContext{CertDir: t.TempDir()}

	_, err := copier.Image(ctx, image, origin, &copier.Options{DestinationCtx: untrusted})
	e2eCheckCertificateError(t, "push", err)
	e2eCopy(t, image, origin, &copier.Options{DestinationCtx: &types.SystemContext{CertDir: reg.CertDir}})
	_, err = copier.Image(ctx, e2eRef(t, "dir:"+filepath.Join(t.TempDir(), "d")), image, &copier.Options{SourceCtx: untrusted})
	e2eCheckCertificateError(t, "pull", err)
}

func e2eCheckCertificateError(t *testing.T, what string, err error) {
	t.Helper()
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	switch {
	case err == nil:
		t.Errorf("%s with an untrusted CA succeeded", what)
	case errors.As(err, &verify), errors.As(err, &unknown):
	case strings.Contains(err.Error(), "certificate"):
		t.Logf("%s: certificate error only recognisable by its message: %v", what, err)
	default:
		t.Errorf("%s with an untrusted CA: %v, want a certificate verification error", what, err)
	}
}
