package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	syncer "github.com/imgcopy/imgcopy/sync"
)

// TestCLISync runs imgcopy sync on the scenario of the library tests: a dry run, the run
// (a missing tag and a broken blob fail their images only; exit 1, as their classes differ),
// the JSON report, and an unchanged re-run with --progress json.
func TestCLISync(t *testing.T) {
	t.Parallel()
	corrupt := &corruptingHandler{bad: map[string]bool{}}
	s := newSyncScenario(t, testregistry.Options{Wrap: corrupt.wrap})
	corrupt.set(string(pushBlob(t, s.src.Host, "scratch", imgspecv1.MediaTypeImageLayerGzip, gzipBytes(t, []byte("layer of web-v2 for amd64\n"))).Digest))
	dir := t.TempDir()
	home := t.TempDir()
	cfg := filepath.Join(dir, "sync.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`%s:
  tls-verify: false
  repositories:
    team/app: {semver: ">=1.20 <2", exclude: ['-rc']}
    team/web: {include: ['^v'], exclude: ['-debug$'], destination: "frontend/{{.Name}}"}
    base/tool: {tags: [a, b, c, missing], platforms: [linux/amd64]}
`, s.src.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := "docker://" + s.dst.Host + "/mirror"

	dry := cliIn(t, home, "", "sync", "--dry-run", "--output", "json", "--config", cfg, dst)
	if dry.code != 3 { // the missing literal tag: not found
		t.Fatalf("dry run: exit %d, want 3\n%s%s", dry.code, dry.stdout, dry.stderr)
	}
	var plan syncer.Report
	if err := json.Unmarshal([]byte(dry.stdout), &plan); err != nil || !plan.DryRun {
		t.Fatalf("dry-run JSON: %v\n%s", err, dry.stdout)
	}
	var planned []string
	for _, r := range plan.Images {
		if r.Action == syncer.ActionCopy {
			planned = append(planned, "copied "+r.Destination)
		}
	}
	sort.Strings(planned)

	reportFile := filepath.Join(dir, "report.json")
	res := cliIn(t, home, "", "sync", "--progress", "plain", "--report", reportFile, "--config", cfg, dst)
	if res.code != 1 {
		t.Fatalf("sync: exit %d, want 1 (failures of two classes)\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"/mirror/tool:missing [not-found]", "/mirror/frontend/web:v2 [verification]", "2 images failed"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	var rep syncer.Report
	b, err := os.ReadFile(reportFile)
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	var copied, failed []string
	for _, r := range rep.Images {
		switch r.Action {
		case syncer.ActionCopied:
			copied = append(copied, "copied "+r.Destination)
			if r.Digest == "" || r.Seconds <= 0 || r.BlobsCopied+r.BlobsReused == 0 {
				t.Errorf("report entry lacks digest, time or blobs: %+v", r)
			}
		case syncer.ActionFailed:
			failed = append(failed, r.ErrorClass)
			if r.Error == "" || r.Source == "" {
				t.Errorf("failure without error or source: %+v", r)
			}
		}
	}
	sort.Strings(copied)
	sort.Strings(failed)
	wantCopied := slices.DeleteFunc(slices.Clone(planned), func(s string) bool { return strings.HasSuffix(s, "/frontend/web:v2") })
	if !slices.Equal(copied, wantCopied) || !slices.Equal(failed, []string{"not-found", "verification"}) {
		t.Errorf("report: copied %v, failed %v; want copied %v (the plan less the broken image)", copied, failed, wantCopied)
	}

	// Re-run (same cache): only the broken image is read again; --progress json reports each image.
	s.src.ResetRequests()
	res = cliIn(t, home, "", "sync", "--progress", "json", "--config", cfg, dst)
	if n := countRequests(s.src, "GET", "/manifests/") - countRequests(s.src, "GET", "/team/web/manifests/v2"); n != 0 {
		t.Errorf("re-run made %d source manifest GETs besides the broken image's", n)
	}
	events := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	for sc.Scan() {
		var ev struct{ Event, Action string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("--progress json line %q: %v", sc.Text(), err)
		}
		events[ev.Event+" "+ev.Action]++
	}
	// The broken image is copied again (and fails again); the 7 others are up to date.
	if events["image-done up-to-date"] != 7 || events["image-done failed"] != 2 || events["sync-done "] != 1 || events["blob-failed "] == 0 {
		t.Errorf("--progress json events: %v", events)
	}
}

func TestCLISyncUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("quay.io:\n  images:\n    app: [v1]\n  tls_verify: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"sync", "--config", bad, "docker://registry.example/mirror"}, bad + `:4: unknown key "tls_verify"`},
		{"bad shard", []string{"sync", "--shard", "3/3", "docker://a.example/app", "docker://b.example/m"}, "invalid shard"},
		{"bad regex", []string{"sync", "--include", "(", "docker://a.example/app", "docker://b.example/m"}, "--include"},
		{"filters with config", []string{"sync", "--config", bad, "--include", "x", "docker://b.example/m"}, "with --config"},
		{"not a store", []string{"sync", "docker://a.example/app", "docker://busybox"}, "not a registry host"},
		{"one argument", []string{"sync", "docker://a.example/app"}, "expected SRC and DST"},
		{"skopeo --src of another type", []string{"sync", "--src", "tarball", "x", "y"}, "--src"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := cli(t, tc.args...)
			if res.code != 2 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", res.code, res.stderr, tc.want)
			}
		})
	}
}

// TestCLISyncSkopeoForm accepts skopeo sync's command line: --src docker --dest docker with
// names without transports, and skopeo's naming (the last path element).
func TestCLISyncSkopeoForm(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{})
	dst := testregistry.Start(t, testregistry.Options{})
	for _, tag := range []string{"1", "2"} {
		pushSingle(t, src.Host, "team/app", tag, "app"+tag, "amd64")
	}
	mustCLI(t, "sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false", "--dest-tls-verify=false", "--keep-going",
		src.Host+"/team/app", dst.Host+"/mirror")
	for _, tag := range []string{"1", "2"} {
		if headDigest(t, e2eRef(t, "docker://"+dst.Host+"/mirror/app:"+tag)) == "" {
			t.Errorf("mirror/app:%s missing", tag)
		}
	}
}

// TestCLISyncBareTags syncs the sample layout, whose one image is named by a bare tag as
// skopeo names layout entries: stores that keep names as they are (an oci-archive, a dir
// tree) take it as it is; a docker-archive and a registry need a repository, and say to give
// the source a destination template.
func TestCLISyncBareTags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name, dst string
		code      int
		want      string // in stderr for a failure
	}{
		{"oci-archive", "oci-archive:" + filepath.Join(dir, "b.tar"), 0, ""},
		{"dir store", "dir:" + filepath.Join(dir, "tree"), 0, ""},
		{"docker-archive", "docker-archive:" + filepath.Join(dir, "d.tar"), 2, "destination template"},
		{"registry", "docker://127.0.0.1:1/m", 2, "destination template"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := cli(t, "sync", "-q", "oci:examples/hello", tc.dst)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, tc.code, tc.want)
			}
			if tc.code != 0 {
				return
			}
			out := cli(t, "list-tags", tc.dst)
			if out.code != 0 || !strings.Contains(out.stdout, `"latest"`) {
				t.Errorf("list-tags %s: exit %d, %s %s", tc.dst, out.code, out.stdout, out.stderr)
			}
		})
	}
}

// TestCLISyncRegexWithComma: --include and --exclude take each regular expression whole, so a
// bounded repetition ({1,2}) works; the flag parser used to cut it at the comma, and the sync
// selected nothing. Comma lists still work where values hold no comma (--platform, --tag).
func TestCLISyncRegexWithComma(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{})
	for _, tag := range []string{"v1", "v12", "v123", "w1"} {
		pushSingle(t, src.Host, "team/app", tag, "app"+tag, "amd64")
	}
	res := mustCLI(t, "sync", "--dry-run", "--src-tls-verify=false", "--include", `^v[0-9]{1,2}$`, "--exclude", `^x{1,2}$`,
		"docker://"+src.Host+"/team/app", "oci:"+filepath.Join(t.TempDir(), "layout"))
	for tag, want := range map[string]bool{"v1": true, "v12": true, "v123": false, "w1": false} {
		if got := strings.Contains(res.stdout, "team/app:"+tag+" "); got != want {
			t.Errorf("tag %s planned: %v, want %v\n%s", tag, got, want, res.stdout)
		}
	}
	res = mustCLI(t, "sync", "--dry-run", "--src-tls-verify=false", "--tag", "v1,w1",
		"docker://"+src.Host+"/team/app", "oci:"+filepath.Join(t.TempDir(), "layout"))
	if !strings.Contains(res.stdout, "team/app:v1 ") || !strings.Contains(res.stdout, "team/app:w1 ") || strings.Contains(res.stdout, "team/app:v12 ") {
		t.Errorf("--tag v1,w1:\n%s", res.stdout)
	}
}
