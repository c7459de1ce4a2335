package interop

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// Registry-side interop against the in-process distribution/v3 registry (internal/testregistry):
// one auth file and one CA shared by every tool over TLS with Basic auth, and a regctl artifact
// moved between two different registry implementations.

// TestPeersShareTLSAndAuth pushes and pulls over TLS (CA in a certs.d directory) with Basic auth
// from a single auth file: imgcopy writes, skopeo, crane and regctl read, and back.
func TestPeersShareTLSAndAuth(t *testing.T) {
	tmp := setup(t, "skopeo", "crane", "regctl")
	fx := getFixture(t)
	const user, password = "interop", "s3cret-pass"
	reg := testregistry.Start(t, testregistry.Options{TLS: true, BasicAuth: map[string]string{user: password}})

	// One credentials file in the format both containers (auth.json) and Docker (config.json) read.
	auth := map[string]any{"auths": map[string]any{reg.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}}
	authJSON, err := json.Marshal(auth)
	if err != nil {
		t.Fatal(err)
	}
	dockerConfig := filepath.Join(tmp, "docker")
	authFile := filepath.Join(dockerConfig, "config.json")
	caFile := filepath.Join(tmp, "ca.crt")
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(authFile, authJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, reg.CACertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	craneEnv := []string{"DOCKER_CONFIG=" + dockerConfig, "SSL_CERT_FILE=" + caFile}
	// regctl pings the registry when configuring it and fails on the 401, but keeps the setting.
	if _, err := runErr(t, "regctl", "registry", "set", "--cacert", string(reg.CACertPEM), reg.Host); err != nil {
		t.Logf("regctl registry set (before login): %v", err)
	}
	regctl(t, "registry", "login", "-u", user, "-p", password, reg.Host)

	ref := reg.Host + "/tls/hello:v1"
	got := imgcopyCopy(t, "oci:"+fx.dir+":v1", "docker://"+ref, "--dest-cert-dir", reg.CertDir, "--authfile", authFile)
	if got != fx.digests["v1"] {
		t.Errorf("imgcopy reported %s, want %s", got, fx.digests["v1"])
	}
	raw := skopeo(t, "inspect", "--raw", "--cert-dir", reg.CertDir, "--authfile", authFile, "docker://"+ref)
	if d := sha256Digest([]byte(raw)); d != got {
		t.Errorf("skopeo reads %s over TLS with the auth file, imgcopy reported %s", d, got)
	}
	if d := strings.TrimSpace(runEnv(t, craneEnv, "crane", "digest", ref)); d != got {
		t.Errorf("crane reads %s over TLS with DOCKER_CONFIG, imgcopy reported %s", d, got)
	}
	if d := regctl(t, "image", "digest", ref); d != got {
		t.Errorf("regctl reads %s, imgcopy reported %s", d, got)
	}

	// And imgcopy reads what skopeo pushed with the same files.
	other := reg.Host + "/tls/other:v2"
	skopeo(t, "copy", "--dest-cert-dir", reg.CertDir, "--dest-authfile", authFile, "oci:"+fx.dir+":v2", "docker://"+other)
	layout := filepath.Join(tmp, "layout")
	if got := imgcopyCopy(t, "docker://"+other, "oci:"+layout+":v2", "--src-cert-dir", reg.CertDir, "--authfile", authFile); got != fx.digests["v2"] {
		t.Errorf("imgcopy read %s from skopeo's push, want %s", got, fx.digests["v2"])
	}

	// Without credentials the registry refuses imgcopy, and imgcopy says so.
	_, err = runErr(t, suite.bin, "copy", "--src-cert-dir", reg.CertDir, "--src-no-creds", "docker://"+ref, "oci:"+filepath.Join(tmp, "denied")+":v1")
	if err == nil {
		t.Errorf("imgcopy copied from a Basic-auth registry without credentials")
	}
}

// TestRegctlArtifactAcrossRegistries puts an artifact with a subject into the distribution/v3
// registry with regctl, then copies subject and artifact with imgcopy to the Debian 2.8
// registry and checks that the artifact keeps its digest and subject. (Neither registry serves
// the referrers API as configured, so regctl also writes the sha256-<hex> fallback tag; the
// test logs which requests regctl made.)
func TestRegctlArtifactAcrossRegistries(t *testing.T) {
	setup(t, "skopeo", "regctl", "crane", "docker-registry")
	fx := getFixture(t)
	src := testregistry.Start(t, testregistry.Options{})
	regctlPlainHTTP(t, src.Host)
	dst := startRegistry(t)

	subject := src.Host + "/ref/hello:v1"
	skopeo(t, "copy", "oci:"+fx.dir+":v1", "docker://"+subject)
	sbom := filepath.Join(t.TempDir(), "sbom.json")
	if err := os.WriteFile(sbom, []byte(`{"sbom":"referrers"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	regctl(t, "artifact", "put", "--subject", subject, "--artifact-type", "application/vnd.example.sbom",
		"--file", sbom, "--file-media-type", "application/vnd.example.sbom.v1+json")
	artifact := regctl(t, "artifact", "list", subject, "--format", "{{range .Descriptors}}{{println .Digest}}{{end}}")
	if artifact == "" || strings.Contains(artifact, "\n") {
		t.Fatalf("regctl artifact list: want one referrer, got %q", artifact)
	}
	for _, r := range src.Requests() {
		if strings.Contains(r.Path, "/referrers/") || strings.Contains(r.Path, "sha256-") {
			t.Logf("regctl referrers request: %s %s -> %d", r.Method, r.Path, r.Status)
		}
	}

	for _, c := range []struct{ from, to, want string }{
		{from: subject, to: dst + "/ref/hello:v1", want: fx.digests["v1"]},
		{from: src.Host + "/ref/hello@" + artifact, to: dst + "/ref/hello:sbom", want: artifact},
	} {
		if got := imgcopyCopy(t, "docker://"+c.from, "docker://"+c.to); got != c.want {
			t.Errorf("imgcopy %s reported %s, want %s", c.from, got, c.want)
		}
		if d := crane(t, "digest", c.to); d != c.want {
			t.Errorf("crane digest %s = %s, want %s", c.to, d, c.want)
		}
	}
	raw := crane(t, "manifest", dst+"/ref/hello:sbom")
	if !strings.Contains(raw, fx.digests["v1"]) {
		t.Errorf("the copied artifact lost its subject:\n%s", raw)
	}
}
