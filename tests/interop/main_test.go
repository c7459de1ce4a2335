package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// enableEnv is the variable that turns the interop tests on; .ci/run sets it after running
// bench/install-peers.sh.
const enableEnv = "IMGCOPY_INTEROP"

// binEnv names a prebuilt imgcopy binary to test instead of building ./cmd/imgcopy.
const binEnv = "IMGCOPY_INTEROP_BIN"

// commandTimeout bounds every external command, so that a hung peer fails the test instead of
// the whole run.
const commandTimeout = 90 * time.Second

// peers are the tools the suite needs; with IMGCOPY_INTEROP=1 a missing one fails the tests that use it.
var peers = []string{"skopeo", "umoci", "crane", "regctl", "docker-registry", "ctr", "containerd"}

// suite is the state TestMain sets up once for all tests.
var suite struct {
	enabled  bool
	root     string // repository root (holds go.mod)
	work     string // scratch directory shared by the tests, removed at exit
	bin      string // the built imgcopy binary
	buildErr error  // set when the binary did not build
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(enableEnv) != "1" {
		fmt.Fprintf(os.Stderr, "interop: skipped: set %s=1 to run against skopeo, umoci, crane, regctl and docker-registry (bench/install-peers.sh installs them)\n", enableEnv)
		return m.Run()
	}
	suite.enabled = true
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	suite.root = root
	work, err := os.MkdirTemp("", "imgcopy-interop-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	defer os.RemoveAll(work)
	suite.work = work
	if bin := os.Getenv(binEnv); bin != "" {
		// A prebuilt binary (a release build, or a stand-in while the CLI is being written).
		suite.bin = bin
		return m.Run()
	}
	suite.bin = filepath.Join(work, "imgcopy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", suite.bin, "./cmd/imgcopy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		suite.buildErr = fmt.Errorf("go build ./cmd/imgcopy: %v\n%s", err, out)
		fmt.Fprintf(os.Stderr, "interop: %v\n", suite.buildErr)
	}
	return m.Run()
}

// repoRoot finds the directory holding go.mod, upwards from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// setup skips t unless the suite is enabled, fails it when the binary did not build or a
// named tool is missing, and returns a fresh temporary directory.
func setup(t *testing.T, tools ...string) string {
	t.Helper()
	if !suite.enabled {
		t.Skipf("interop tests skipped: set %s=1 (needs %s)", enableEnv, strings.Join(peers, ", "))
	}
	if suite.buildErr != nil {
		t.Fatalf("imgcopy binary not available: %v", suite.buildErr)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s=1 but %s is not installed (run bench/install-peers.sh): %v", enableEnv, tool, err)
		}
	}
	return t.TempDir()
}

// run runs a command and returns its standard output; any failure fails the test with the
// command line and its standard error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t, name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// runErr runs a command and returns its standard output and, on failure, an error carrying the
// command line and standard error.
func runErr(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	return runEnvErr(t, nil, name, args...)
}

// runEnv is run with extra environment variables ("K=V").
func runEnv(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runEnvErr(t, env, name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

func runEnvErr(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), "REGCTL_CONFIG="+regctlConfig(t)), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("$ %s %s", filepath.Base(name), strings.Join(args, " "))
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// imgcopy runs the built binary.
func imgcopy(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, suite.bin, args...)
}

// hasFlag reports whether args hold flag (as "--flag" or "--flag=value").
func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

// imgcopyCopy copies src to dst with imgcopy and returns the manifest digest it reported
// through --digestfile. Registry references get TLS verification turned off (plain HTTP on
// 127.0.0.1) unless flags give a certificate directory for that side.
func imgcopyCopy(t *testing.T, src, dst string, flags ...string) string {
	t.Helper()
	digestFile := filepath.Join(t.TempDir(), "digest")
	args := []string{"copy", "--digestfile", digestFile}
	if strings.HasPrefix(src, "docker://") && !hasFlag(flags, "--src-cert-dir") {
		args = append(args, "--src-tls-verify=false")
	}
	if strings.HasPrefix(dst, "docker://") && !hasFlag(flags, "--dest-cert-dir") {
		args = append(args, "--dest-tls-verify=false")
	}
	args = append(args, flags...)
	args = append(args, src, dst)
	imgcopy(t, args...)
	b, err := os.ReadFile(digestFile)
	if err != nil {
		t.Fatalf("imgcopy %s %s: reading --digestfile: %v", src, dst, err)
	}
	d := strings.TrimSpace(string(b))
	if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Fatalf("imgcopy %s %s: --digestfile holds %q, want sha256:<64 hex>", src, dst, d)
	}
	return d
}

// skopeo runs skopeo with the insecure policy (the tests have no policy.json of their own) and
// TLS verification off for registry references, unless a certificate directory is given.
func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "skopeo", skopeoArgs(args)...)
}

func skopeoArgs(args []string) []string {
	cmd, rest := args[0], args[1:]
	out := []string{"--insecure-policy", cmd}
	switch {
	case cmd == "copy" && len(rest) >= 2:
		if strings.HasPrefix(rest[len(rest)-2], "docker://") && !hasFlag(rest, "--src-cert-dir") {
			out = append(out, "--src-tls-verify=false")
		}
		if strings.HasPrefix(rest[len(rest)-1], "docker://") && !hasFlag(rest, "--dest-cert-dir") {
			out = append(out, "--dest-tls-verify=false")
		}
	case len(rest) > 0 && strings.HasPrefix(rest[len(rest)-1], "docker://") && !hasFlag(rest, "--cert-dir"):
		out = append(out, "--tls-verify=false")
	}
	return append(out, rest...)
}

// skopeoRawDigest returns the sha256 of the manifest bytes skopeo reads from ref.
func skopeoRawDigest(t *testing.T, ref string) string {
	t.Helper()
	return sha256Digest([]byte(skopeo(t, "inspect", "--raw", ref)))
}

// skopeoInspect parses `skopeo inspect` (the image skopeo picks for this machine's platform).
func skopeoInspect(t *testing.T, ref string, extra ...string) inspectOutput {
	t.Helper()
	args := append([]string{"inspect"}, extra...)
	out := skopeo(t, append(args, ref)...)
	var res inspectOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
	return res
}

// inspectOutput is the part of skopeo's inspect output the tests look at.
type inspectOutput struct {
	Digest       string
	RepoTags     []string
	Architecture string
	Os           string
	Layers       []string
	Labels       map[string]string
}

// crane runs crane with --insecure (plain HTTP registries on 127.0.0.1).
func crane(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "crane", append(args, "--insecure")...))
}

// craneConfigDigest returns the digest of the config blob crane reads for ref.
func craneConfigDigest(t *testing.T, ref string) string {
	t.Helper()
	return sha256Digest([]byte(run(t, "crane", "config", "--insecure", ref)))
}

// regctl runs regctl with a per-test configuration that has TLS off for the test registries.
func regctl(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "regctl", args...))
}

// regctlConfig returns the REGCTL_CONFIG path shared by the suite, so that regctl never touches
// ~/.regctl; startRegistry adds each registry to it as plain HTTP.
func regctlConfig(t *testing.T) string {
	if suite.work == "" {
		t.Fatal("suite not set up")
	}
	return filepath.Join(suite.work, "regctl.json")
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// startRegistry starts the Debian docker-registry (CNCF distribution 2.8) on a free 127.0.0.1
// port with filesystem storage in a temporary directory, waits until it answers /v2/, and stops
// it when the test ends. It returns host:port, and registers the host with regctl as plain HTTP.
func startRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		host, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: interop-test-secret
`, filepath.Join(dir, fmt.Sprintf("data%d", attempt)), host)
		configPath := filepath.Join(dir, fmt.Sprintf("config%d.yml", attempt))
		if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		var logBuf syncBuffer
		cmd := exec.Command("docker-registry", "serve", configPath)
		cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting docker-registry: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-done
		}
		if lastErr = waitRegistry(host, done); lastErr == nil {
			t.Cleanup(stop)
			regctlPlainHTTP(t, host)
			return host
		}
		stop()
		lastErr = fmt.Errorf("%v; log:\n%s", lastErr, logBuf.String())
	}
	t.Fatalf("docker-registry did not start: %v", lastErr)
	return ""
}

// regctlPlainHTTP tells regctl that host speaks plain HTTP.
func regctlPlainHTTP(t *testing.T, host string) {
	t.Helper()
	regctl(t, "registry", "set", "--tls", "disabled", host)
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitRegistry polls GET /v2/ until it answers 200, the process exits, or 15 s pass.
func waitRegistry(host string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("docker-registry exited")
		case <-tick.C:
		}
	}
	return fmt.Errorf("docker-registry on %s did not answer /v2/ within 15s", host)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child's stdout and stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
