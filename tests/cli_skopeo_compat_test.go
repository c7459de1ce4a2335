package tests

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// TestCLIInspectFormatLikeSkopeo checks the --format forms skopeo scripts use: "json" and
// {{json .}} print the JSON summary, {{json .X}} and join work in templates, and with
// --config the template formats the config as skopeo's does ({{.OS}}, {{.Config.Labels}}).
func TestCLIInspectFormatLikeSkopeo(t *testing.T) {
	t.Parallel()
	const ref = "oci:examples/hello:latest"
	hello := fixtures.Hello()
	for _, f := range []string{"json", "{{json .}}", " {{ json . }} "} {
		res := mustCLI(t, "inspect", "--format", f, ref)
		var out struct{ Digest string }
		if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || out.Digest != hello.ManifestDigest.String() {
			t.Errorf("--format %q printed %q (%v), want the JSON summary", f, res.stdout, err)
		}
	}
	res := mustCLI(t, "inspect", "--format", `{{json .Labels}} {{join .RepoTags ","}}`, ref)
	if want := `{"org.opencontainers.image.description":"imgcopy sample image","org.opencontainers.image.title":"hello","org.opencontainers.image.version":"1.0.0"} latest` + "\n"; res.stdout != want {
		t.Errorf("--format with json and join printed %q, want %q", res.stdout, want)
	}
	res = mustCLI(t, "inspect", "--config", "--format", `{{.OS}}/{{.Architecture}} {{index .Config.Labels "org.opencontainers.image.title"}}`, ref)
	if res.stdout != "linux/amd64 hello\n" {
		t.Errorf("--config --format printed %q", res.stdout)
	}
	if res := cli(t, "inspect", "--raw", "--format", "json", ref); res.code != 2 || !strings.Contains(res.stderr, "--format cannot be combined with --raw") {
		t.Errorf("--raw --format json: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestCLIInspectWhenTagListIsDenied checks that, as with skopeo, inspect works against a
// registry that lets an account pull but not list tags (ECR without ecr:ListImages): RepoTags
// is empty, a warning goes to stderr and stdout stays JSON.
func TestCLIInspectWhenTagListIsDenied(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/tags/list") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"not allowed to list tags"}]}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	image := "docker://" + reg.Host + "/app:1"
	mustCLI(t, "copy", "-q", "oci:examples/hello:latest", image)
	res := mustCLI(t, "inspect", image)
	var out struct {
		Digest   string
		RepoTags []string
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || out.Digest != fixtures.Hello().ManifestDigest.String() || out.RepoTags == nil || len(out.RepoTags) != 0 {
		t.Errorf("inspect printed %q (%v)", res.stdout, err)
	}
	if !strings.Contains(res.stderr, "does not list the tags") {
		t.Errorf("stderr %q has no warning", res.stderr)
	}
	if res := cli(t, "list-tags", image); res.code != 4 {
		t.Errorf("list-tags: exit %d, want 4 (denied): %s", res.code, res.stderr)
	}
}

// TestCLIInspectEmptyStoreFails checks that inspecting a path that holds no image fails with
// exit code 3, as skopeo's inspect does, so that `inspect dir:cache/img || copy ...` copies
// into a directory left empty or half-written by an interrupted copy.
func TestCLIInspectEmptyStoreFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	partial := filepath.Join(dir, "partial")
	if err := os.MkdirAll(filepath.Join(partial, ".imgcopy-staging-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(dir, "layout")
	if err := os.MkdirAll(layout, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[]}`} {
		if err := os.WriteFile(filepath.Join(layout, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"dir:" + partial, "oci:" + layout} {
		if res := cli(t, "inspect", ref); res.code != 3 || res.stdout != "" {
			t.Errorf("inspect %s: exit %d, stdout %q, stderr %q; want exit 3 and no output", ref, res.code, res.stdout, res.stderr)
		}
	}
}

// TestCLISyncDirImageNamedAfterItsDirectory checks skopeo's `sync --src dir` of a directory
// that is itself an image: it is named after the directory, tag latest unless the name has
// one, where imgcopy skipped it as unnamed and exited 0 having copied nothing.
func TestCLISyncDirImageNamedAfterItsDirectory(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	dir := t.TempDir()
	app, tagged := filepath.Join(dir, "app"), filepath.Join(dir, "tools:1.2")
	mustCLI(t, "copy", "-q", "oci:examples/hello:latest", "dir:"+app)
	mustCLI(t, "copy", "-q", "oci:examples/hello:latest", "dir:"+tagged)
	mustCLI(t, "sync", "-q", "--src", "dir", "--dest", "docker", app, reg.Host+"/mirror")
	mustCLI(t, "sync", "-q", "dir:"+tagged, "docker://"+reg.Host+"/mirror")
	for repo, want := range map[string]string{"mirror/app": "latest", "mirror/tools": "1.2"} {
		res := mustCLI(t, "list-tags", "docker://"+reg.Host+"/"+repo)
		var out struct{ Tags []string }
		if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || len(out.Tags) != 1 || out.Tags[0] != want {
			t.Errorf("%s has tags %q (%v), want [%s]", repo, res.stdout, err, want)
		}
	}
}

// TestCLIExplicitTLSVerifyRequiresHTTPS checks that --tls-verify=true given explicitly
// requires HTTPS on a loopback registry too, as skopeo's flag does; without the flag a
// loopback registry may answer over plain HTTP.
func TestCLIExplicitTLSVerifyRequiresHTTPS(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	image := "docker://" + reg.Host + "/app:1"
	mustCLI(t, "copy", "-q", "oci:examples/hello:latest", image)
	mustCLI(t, "inspect", "--raw", image)
	if res := cli(t, "inspect", "--raw", "--tls-verify=true", image); res.code != 7 || res.stdout != "" || !strings.Contains(res.stderr, "the registry does not speak TLS: pass") {
		t.Errorf("inspect --tls-verify=true of a plain-HTTP registry: exit %d, stdout %q, stderr %q; want exit 7 and a hint", res.code, res.stdout, res.stderr)
	}
	if res := cli(t, "copy", "-q", "--dest-tls-verify=true", "oci:examples/hello:latest", image); res.code != 7 {
		t.Errorf("copy --dest-tls-verify=true to a plain-HTTP registry: exit %d, stderr %q; want exit 7", res.code, res.stderr)
	}
}
