package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// cliBinary is the imgcopy binary built once by TestMain; cliBuildErr is set when it did not build.
var (
	cliBinary   string
	cliBuildErr error
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "imgcopy-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cliBinary = filepath.Join(dir, "imgcopy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", cliBinary, "./cmd/imgcopy")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		cliBuildErr = fmt.Errorf("go build ./cmd/imgcopy: %v\n%s", err, out)
	}
	return m.Run()
}

// cliResult is one run of the binary.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs the imgcopy binary from the repository root with a private HOME, cache and auth
// configuration, so no test reads or writes the user's files.
func cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return cliWithInput(t, "", args...)
}

func cliWithInput(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	return cliIn(t, t.TempDir(), stdin, args...)
}

// cliIn runs the binary with home as HOME (and the cache and config directories in it), so
// that several runs can share a blob-info cache.
func cliIn(t *testing.T, home, stdin string, args ...string) cliResult {
	t.Helper()
	if cliBuildErr != nil {
		t.Fatal(cliBuildErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliBinary, args...)
	cmd.Dir = ".."
	cmd.Env = cliEnv(home)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running imgcopy %v: %v", args, err)
	}
	return res
}

// cliEnv is the environment of the binary: the test's, with home as HOME and the cache and
// config directories in it.
func cliEnv(home string) []string {
	return append(os.Environ(),
		"HOME="+home,
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"),
		"DOCKER_CONFIG="+filepath.Join(home, "docker"),
		"REGISTRY_AUTH_FILE=",
		"TMPDIR="+home,
	)
}

// mustCLI runs the binary and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	res := cli(t, args...)
	if res.code != 0 {
		t.Fatalf("imgcopy %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

func readDigestFile(t *testing.T, path string) digest.Digest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := digest.Parse(string(b))
	if err != nil {
		t.Fatalf("digest file %q: %v", b, err)
	}
	return d
}

// TestCLICopyChain copies the sample through every local transport and back; no step
// converts anything, so every --digestfile holds the sample's manifest digest.
func TestCLICopyChain(t *testing.T) {
	t.Parallel()
	hello := fixtures.Hello()
	tmp := t.TempDir()
	steps := []struct{ src, dest string }{
		{"oci:examples/hello:latest", "dir:" + filepath.Join(tmp, "dir")},
		{"dir:" + filepath.Join(tmp, "dir"), "oci-archive:" + filepath.Join(tmp, "hello-oci.tar") + ":v1"},
		{"oci-archive:" + filepath.Join(tmp, "hello-oci.tar") + ":v1", "docker-archive:" + filepath.Join(tmp, "hello.tar") + ":hello:v1"},
		{"docker-archive:" + filepath.Join(tmp, "hello.tar"), "oci:" + filepath.Join(tmp, "layout") + ":again"},
		{"oci:" + filepath.Join(tmp, "layout") + ":again", "dir:" + filepath.Join(tmp, "dir2")},
	}
	for i, s := range steps {
		digestFile := filepath.Join(tmp, fmt.Sprintf("digest-%d", i))
		res := mustCLI(t, "--progress", "plain", "--digestfile", digestFile, s.src, s.dest)
		if got := readDigestFile(t, digestFile); got != hello.ManifestDigest {
			t.Errorf("%s -> %s: digest %s, want %s", s.src, s.dest, got, hello.ManifestDigest)
		}
		if !strings.Contains(res.stdout, "Wrote "+hello.ManifestDigest.String()) {
			t.Errorf("%s -> %s: no summary line in %q", s.src, s.dest, res.stdout)
		}
	}
	got, err := os.ReadFile(filepath.Join(tmp, "dir2", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, hello.Manifest) {
		t.Errorf("manifest after the round trip differs from the sample's:\n%s\n%s", got, hello.Manifest)
	}
	res := mustCLI(t, "manifest-digest", filepath.Join(tmp, "dir2", "manifest.json"))
	if strings.TrimSpace(res.stdout) != hello.ManifestDigest.String() {
		t.Errorf("manifest-digest printed %q, want %s", res.stdout, hello.ManifestDigest)
	}
}

// TestCLICopyConversions checks --format in both directions.
func TestCLICopyConversions(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	v2s2 := filepath.Join(tmp, "v2s2")
	mustCLI(t, "--quiet", "--format", "v2s2", "oci:examples/hello:latest", "dir:"+v2s2)
	b, err := os.ReadFile(filepath.Join(v2s2, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "application/vnd.docker.distribution.manifest.v2+json") {
		t.Errorf("--format v2s2 wrote %s", b)
	}
	back := filepath.Join(tmp, "back")
	digestFile := filepath.Join(tmp, "digest")
	mustCLI(t, "--quiet", "--format", "oci", "--digestfile", digestFile, "dir:"+v2s2, "oci:"+back+":latest")
	if got := readDigestFile(t, digestFile); got == "" {
		t.Errorf("no digest after converting back")
	}
	res := cli(t, "--quiet", "--preserve-digests", "--format", "v2s2", "oci:examples/hello:latest", "dir:"+filepath.Join(tmp, "never"))
	if res.code != 1 || !strings.Contains(res.stderr, "imgcopy: ") {
		t.Errorf("--preserve-digests with a conversion: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestCLIProgressJSON parses every --progress json line.
func TestCLIProgressJSON(t *testing.T) {
	t.Parallel()
	hello := fixtures.Hello()
	dest := filepath.Join(t.TempDir(), "layout")
	res := mustCLI(t, "--progress", "json", "oci:examples/hello:latest", "oci:"+dest+":latest")
	events := map[string]int{}
	var last map[string]any
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	for sc.Scan() {
		last = map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		ev, _ := last["event"].(string)
		events[ev]++
	}
	if events["blob-started"] != 3 || events["blob-done"] != 3 || events["manifest-written"] < 1 || events["done"] != 1 {
		t.Errorf("events %v, want 3 blobs started and done, a manifest and the summary", events)
	}
	if last["event"] != "done" || last["digest"] != hello.ManifestDigest.String() || last["blobsCopied"] != float64(3) {
		t.Errorf("last line %v", last)
	}
	// A second copy into the same layout finds the image there and checks no blob.
	res = mustCLI(t, "--progress", "json", "oci:examples/hello:latest", "oci:"+dest+":second")
	if !strings.Contains(res.stdout, `"alreadyPresent":true`) || strings.Contains(res.stdout, `"event":"blob-started"`) {
		t.Errorf("second copy did not report the image as already present:\n%s", res.stdout)
	}
	// A dir destination has no such shortcut: a re-copy reuses every blob one by one.
	dirDest := "dir:" + filepath.Join(t.TempDir(), "d")
	mustCLI(t, "oci:examples/hello:latest", dirDest)
	res = mustCLI(t, "--progress", "json", "oci:examples/hello:latest", dirDest)
	if strings.Count(res.stdout, `"event":"blob-reused"`) != 3 || strings.Contains(res.stdout, `"event":"blob-started"`) {
		t.Errorf("dir re-copy did not reuse every blob:\n%s", res.stdout)
	}
}

// TestCLIExitCodes checks usage errors (2), missing images (3) and their messages;
// TestCLIErrorClasses covers every class against a registry.
func TestCLIExitCodes(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"one argument", []string{"oci:examples/hello:latest"}, 2, []string{"expected SRC and DST"}},
		{"unknown flag", []string{"--frobnicate", "oci:examples/hello:latest", "dir:" + tmp}, 2, []string{"flag provided but not defined"}},
		{"unknown transport", []string{"foo:bar", "dir:" + tmp}, 2, []string{`transport "foo"`, "known transports: dir, docker, docker-archive, oci, oci-archive"}},
		{"bad docker reference", []string{"docker://UPPER/Case", "dir:" + tmp}, 2, []string{"docker"}},
		{"missing tag", []string{"oci:examples/hello:nope", "dir:" + filepath.Join(tmp, "x")}, 3, []string{"oci:examples/hello:nope", "list-tags"}},
		{"missing layout", []string{"oci:" + filepath.Join(tmp, "none") + ":latest", "dir:" + filepath.Join(tmp, "y")}, 3, []string{"imgcopy: "}},
		{"missing archive", []string{"docker-archive:" + filepath.Join(tmp, "none.tar"), "dir:" + filepath.Join(tmp, "z")}, 3, []string{"none.tar"}},
		{"inspect missing image", []string{"inspect", "oci:examples/hello:nope"}, 3, []string{"nope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := cli(t, tc.args...)
			if res.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", res.code, tc.code, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q does not contain %q", res.stderr, w)
				}
			}
			if strings.Contains(res.stderr, ".go:") {
				t.Errorf("stderr shows a stack without --debug: %q", res.stderr)
			}
		})
	}
}

// TestCLIInspect checks the summary, --raw, --config and --format.
func TestCLIInspect(t *testing.T) {
	t.Parallel()
	hello := fixtures.Hello()
	res := mustCLI(t, "inspect", "oci:examples/hello:latest")
	var out struct {
		Digest       digest.Digest
		RepoTags     []string
		Created      time.Time
		Labels       map[string]string
		Architecture string
		Os           string
		Layers       []digest.Digest
		LayersData   []struct {
			MIMEType string
			Digest   digest.Digest
			Size     int64
		}
		Env []string
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("inspect output %q: %v", res.stdout, err)
	}
	img := hello.Images[0]
	if out.Digest != hello.ManifestDigest || out.Os != "linux" || out.Architecture != "amd64" ||
		!out.Created.Equal(fixtures.Created) || out.Labels["org.opencontainers.image.title"] != "hello" ||
		len(out.Layers) != 2 || out.Layers[0] != img.Layers[0].Digest || len(out.LayersData) != 2 ||
		out.LayersData[1].Size != int64(len(img.Layers[1].Data)) || len(out.Env) != 2 {
		t.Errorf("unexpected inspect output:\n%s", res.stdout)
	}
	if len(out.RepoTags) != 1 || out.RepoTags[0] != "latest" {
		t.Errorf("RepoTags %v, want [latest]", out.RepoTags)
	}
	if res := mustCLI(t, "inspect", "--raw", "oci:examples/hello:latest"); res.stdout != string(hello.Manifest) {
		t.Errorf("--raw printed %q, want the manifest bytes", res.stdout)
	}
	if res := mustCLI(t, "inspect", "--config", "--raw", "oci:examples/hello:latest"); res.stdout != string(img.Config) {
		t.Errorf("--config --raw printed %q, want the config bytes", res.stdout)
	}
	res = mustCLI(t, "inspect", "--config", "oci:examples/hello:latest")
	var cfg map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &cfg); err != nil || cfg["architecture"] != "amd64" {
		t.Errorf("--config printed %q (%v)", res.stdout, err)
	}
	res = mustCLI(t, "inspect", "--format", "{{.Os}}/{{.Architecture}} {{len .Layers}}", "oci:examples/hello:latest")
	if strings.TrimSpace(res.stdout) != "linux/amd64 2" {
		t.Errorf("--format printed %q", res.stdout)
	}
}

// TestCLIListTagsAndDelete works on a private copy of the sample layout.
func TestCLIListTagsAndDelete(t *testing.T) {
	t.Parallel()
	layout := filepath.Join(t.TempDir(), "layout")
	if err := fixtures.Hello().Write(layout); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "--quiet", "--format", "v2s2", "oci:"+layout+":latest", "oci:"+layout+":docker")
	res := mustCLI(t, "list-tags", "oci:"+layout)
	var tags struct {
		Repository string
		Tags       []string
	}
	if err := json.Unmarshal([]byte(res.stdout), &tags); err != nil {
		t.Fatalf("list-tags output %q: %v", res.stdout, err)
	}
	if strings.Join(tags.Tags, ",") != "latest,docker" && strings.Join(tags.Tags, ",") != "docker,latest" {
		t.Errorf("tags %v, want latest and docker", tags.Tags)
	}
	blobs := func() []string {
		entries, err := os.ReadDir(filepath.Join(layout, "blobs", "sha256"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, "blobs/sha256/"+e.Name())
		}
		return names
	}
	if len(blobs()) <= 4 {
		t.Fatalf("the converted copy added no blob: %v", blobs())
	}
	mustCLI(t, "delete", "oci:"+layout+":docker")
	res = mustCLI(t, "list-tags", "oci:"+layout)
	if !strings.Contains(res.stdout, `"latest"`) || strings.Contains(res.stdout, `"docker"`) {
		t.Errorf("after delete: %s", res.stdout)
	}
	// Only the converted image's own blobs are gone; the sample's are all still there.
	var want []string
	for _, p := range fixtures.Hello().Paths() {
		if strings.HasPrefix(p, "blobs/") {
			want = append(want, p)
		}
	}
	if got := blobs(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("blobs after delete:\n%v\nwant\n%v", got, want)
	}
	if res := cli(t, "inspect", "oci:"+layout+":docker"); res.code != 3 {
		t.Errorf("inspect of the deleted image: exit %d", res.code)
	}
	mustCLI(t, "inspect", "oci:"+layout+":latest")
}

// TestCLIHelpAndVersion checks that help works for every command and shows examples.
func TestCLIHelpAndVersion(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"copy", "inspect", "list-tags", "delete", "manifest-digest", "login", "logout", "version"} {
		res := mustCLI(t, cmd, "--help")
		if !strings.Contains(res.stdout, "Examples:") {
			t.Errorf("%s --help has no examples:\n%s", cmd, res.stdout)
		}
	}
	if res := mustCLI(t, "version"); !strings.HasPrefix(res.stdout, "imgcopy version ") {
		t.Errorf("version printed %q", res.stdout)
	}
}

// TestCLILoginLogout checks credentials against a registry (Basic, and Bearer through a token
// server), stores and removes them in a private auth file, and stores nothing when the
// registry refuses them.
func TestCLILoginLogout(t *testing.T) {
	t.Parallel()
	for _, bearer := range []bool{false, true} {
		reg := testregistry.Start(t, testregistry.Options{BasicAuth: map[string]string{"alice": "s3cret"}, BearerToken: bearer})
		authfile := filepath.Join(t.TempDir(), "auth.json")
		res := cliWithInput(t, "wrong\n", "login", "--username", "alice", "--password-stdin", "--authfile", authfile, reg.Host)
		if res.code != 4 || !strings.Contains(res.stderr, "nothing stored") || !strings.Contains(res.stderr, reg.Host) {
			t.Errorf("login with a wrong password (bearer %v): exit %d, stderr %q", bearer, res.code, res.stderr)
		}
		if _, err := os.Stat(authfile); !os.IsNotExist(err) {
			t.Errorf("refused credentials were stored (stat: %v)", err)
		}
		res = cliWithInput(t, "s3cret\n", "login", "--username", "alice", "--password-stdin", "--authfile", authfile, reg.Host)
		if res.code != 0 {
			t.Fatalf("login (bearer %v): exit %d: %s", bearer, res.code, res.stderr)
		}
		b, err := os.ReadFile(authfile)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Auths map[string]struct{ Auth string }
		}
		if err := json.Unmarshal(b, &f); err != nil || f.Auths[reg.Host].Auth == "" {
			t.Errorf("auth file %s (%v)", b, err)
		}
		if strings.Contains(res.stdout+res.stderr, "s3cret") {
			t.Errorf("the password was printed")
		}
		mustCLI(t, "logout", "--authfile", authfile, reg.Host)
		if res := cli(t, "logout", "--authfile", authfile, reg.Host); res.code != 1 {
			t.Errorf("second logout: exit %d", res.code)
		}
	}
}

// TestCLICompressionFlags checks --dest-compress-format, --dest-compress-level and
// --dest-decompress through the layer media types inspect reports.
func TestCLICompressionFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string // layer media type
	}{
		{"zstd", []string{"--dest-compress-format", "zstd", "--dest-compress-level", "3"}, "application/vnd.oci.image.layer.v1.tar+zstd"},
		{"decompress", []string{"--dest-decompress"}, "application/vnd.oci.image.layer.v1.tar"},
		{"gzip keeps gzip layers", []string{"--dest-compress-format", "gzip"}, "application/vnd.oci.image.layer.v1.tar+gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dest := "oci:" + filepath.Join(t.TempDir(), "layout") + ":latest"
			mustCLI(t, append(append([]string{"--quiet"}, tc.args...), "oci:examples/hello:latest", dest)...)
			res := mustCLI(t, "inspect", "--format", "{{range .LayersData}}{{.MIMEType}}\n{{end}}", dest)
			for _, mt := range strings.Fields(res.stdout) {
				if mt != tc.want {
					t.Errorf("layer media type %s, want %s", mt, tc.want)
				}
			}
		})
	}
	res := cli(t, "--quiet", "--preserve-digests", "--dest-compress-format", "zstd", "oci:examples/hello:latest",
		"oci:"+filepath.Join(t.TempDir(), "never")+":latest")
	if res.code != 1 {
		t.Errorf("--preserve-digests with recompression: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestCLIAdditionalTag writes a docker-archive with two RepoTags and reads it by either.
func TestCLIAdditionalTag(t *testing.T) {
	t.Parallel()
	hello := fixtures.Hello()
	archive := filepath.Join(t.TempDir(), "hello.tar")
	mustCLI(t, "--quiet", "--additional-tag", "example.com/extra:v2", "oci:examples/hello:latest", "docker-archive:"+archive+":hello:v1")
	for _, name := range []string{"hello:v1", "example.com/extra:v2"} {
		res := mustCLI(t, "inspect", "--format", "{{.Digest}}", "docker-archive:"+archive+":"+name)
		if strings.TrimSpace(res.stdout) != hello.ManifestDigest.String() {
			t.Errorf("%s: digest %q, want %s", name, res.stdout, hello.ManifestDigest)
		}
	}
}
