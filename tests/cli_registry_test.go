package tests

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// TestCLIRegistry pushes the sample to an in-process registry and works with it there:
// digests, list-tags, inspect, pull, mount into another repository and delete.
func TestCLIRegistry(t *testing.T) {
	t.Parallel()
	hello := fixtures.Hello()
	reg := testregistry.Start(t, testregistry.Options{})
	home := t.TempDir()
	tmp := t.TempDir()
	run := func(args ...string) cliResult {
		t.Helper()
		res := cliIn(t, home, "", args...)
		if res.code != 0 {
			t.Fatalf("imgcopy %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
		}
		return res
	}
	image := "docker://" + reg.Host + "/imgcopy/hello:v1"
	digestFile := filepath.Join(tmp, "digest")
	run("--dest-tls-verify=false", "--digestfile", digestFile, "oci:examples/hello:latest", image)
	if got := readDigestFile(t, digestFile); got != hello.ManifestDigest {
		t.Errorf("pushed digest %s, want %s", got, hello.ManifestDigest)
	}

	res := run("list-tags", "--tls-verify=false", "docker://"+reg.Host+"/imgcopy/hello")
	var tags struct {
		Repository string
		Tags       []string
	}
	if err := json.Unmarshal([]byte(res.stdout), &tags); err != nil || strings.Join(tags.Tags, ",") != "v1" ||
		tags.Repository != reg.Host+"/imgcopy/hello" {
		t.Errorf("list-tags: %q (%v)", res.stdout, err)
	}

	res = run("inspect", "--tls-verify=false", "--format", "{{.Name}} {{.Digest}} {{.RepoTags}}", image)
	if want := reg.Host + "/imgcopy/hello " + hello.ManifestDigest.String() + " [v1]"; strings.TrimSpace(res.stdout) != want {
		t.Errorf("inspect printed %q, want %q", res.stdout, want)
	}

	run("--src-tls-verify=false", "--digestfile", digestFile, image, "oci:"+filepath.Join(tmp, "pulled")+":v1")
	if got := readDigestFile(t, digestFile); got != hello.ManifestDigest {
		t.Errorf("pulled digest %s, want %s", got, hello.ManifestDigest)
	}

	// The second push to another repository of the same registry needs no upload.
	res = run("--dest-tls-verify=false", "--progress", "json", "oci:examples/hello:latest", "docker://"+reg.Host+"/other/hello:v1")
	if strings.Contains(res.stdout, `"event":"blob-started"`) || !strings.Contains(res.stdout, `"event":"blob-mounted"`) {
		t.Errorf("second push uploaded blobs instead of mounting them:\n%s", res.stdout)
	}

	run("delete", "--tls-verify=false", "docker://"+reg.Host+"/imgcopy/hello@"+hello.ManifestDigest.String())
	res = cliIn(t, home, "", "inspect", "--tls-verify=false", image)
	if res.code != 3 || !strings.Contains(res.stderr, "imgcopy/hello:v1") {
		t.Errorf("inspect after delete: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestCLIRegistryAuth checks the message for missing credentials and the ways to pass them.
func TestCLIRegistryAuth(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{BasicAuth: map[string]string{"alice": "s3cret"}})
	image := "docker://" + reg.Host + "/private/hello:v1"

	res := cli(t, "--quiet", "--dest-tls-verify=false", "oci:examples/hello:latest", image)
	if res.code != 4 || !strings.Contains(res.stderr, "authentication required") || !strings.Contains(res.stderr, "imgcopy login") ||
		!strings.Contains(res.stderr, reg.Host) || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
		t.Errorf("push without credentials: exit %d, stderr %q", res.code, res.stderr)
	}
	res = cli(t, "--quiet", "--dest-tls-verify=false", "--dest-creds", "alice:wrong", "oci:examples/hello:latest", image)
	if res.code != 4 || !strings.Contains(res.stderr, "authentication required") {
		t.Errorf("push with a wrong password: exit %d, stderr %q", res.code, res.stderr)
	}
	mustCLI(t, "--quiet", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", "oci:examples/hello:latest", image)

	authfile := filepath.Join(t.TempDir(), "auth.json")
	if res := cliWithInput(t, "s3cret\n", "login", "-u", "alice", "--password-stdin", "--authfile", authfile, reg.Host); res.code != 0 {
		t.Fatalf("login: exit %d: %s", res.code, res.stderr)
	}
	mustCLI(t, "inspect", "--tls-verify=false", "--authfile", authfile, image)
	mustCLI(t, "--quiet", "--src-tls-verify=false", "--src-authfile", authfile, image, "dir:"+filepath.Join(t.TempDir(), "d"))
}

// TestCLIRegistryTLS checks the message for an unknown CA and the --cert-dir fix.
func TestCLIRegistryTLS(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{TLS: true})
	image := "docker://" + reg.Host + "/tls/hello:v1"
	res := cli(t, "--quiet", "oci:examples/hello:latest", image)
	if res.code != 7 || !strings.Contains(res.stderr, "certificate") || !strings.Contains(res.stderr, "--dest-cert-dir") {
		t.Errorf("push to an unknown CA: exit %d, stderr %q", res.code, res.stderr)
	}
	mustCLI(t, "--quiet", "--dest-cert-dir", reg.CertDir, "oci:examples/hello:latest", image)
	mustCLI(t, "inspect", "--cert-dir", reg.CertDir, image)
	mustCLI(t, "--quiet", "--dest-tls-verify=false", "oci:examples/hello:latest", "docker://"+reg.Host+"/tls/insecure:v1")
}
