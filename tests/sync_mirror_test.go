package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	syncer "github.com/imgcopy/imgcopy/sync"
	"github.com/imgcopy/imgcopy/types"
)

// The tests of this file follow a mirror over several runs of the same sync while the
// source or the destination changes between them, as a sync run from cron for months sees.

// indexPlatforms returns the architectures an index at host/repo:ref lists, in order.
func indexPlatforms(t testing.TB, host, repo, ref string) []string {
	t.Helper()
	var idx imgspecv1.Index
	if err := json.Unmarshal(getManifestRaw(t, host, repo, ref), &idx); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range idx.Manifests {
		if m.Platform != nil {
			out = append(out, m.Platform.Architecture)
		}
	}
	return out
}

// TestSyncPlatformsListSkipsMissing mirrors with a platforms list that some images do not
// fully have: an index gets the listed platforms it has (regsync does not fail on a missing one either), an index
// that has none of them fails as not found, and an index that later gains a listed platform
// gets it on the next run. A sync that failed every image lacking one of the platforms kept
// those images out of the mirror on every run.
func TestSyncPlatformsListSkipsMissing(t *testing.T) {
	t.Parallel()
	src, dst := testregistry.Start(t, testregistry.Options{}), testregistry.Start(t, testregistry.Options{})
	pushIndex(t, src.Host, "team/app", "v1", "app-v1") // amd64 and arm64
	pushIndexOf(t, src.Host, "team/app", "v2", "app-v2", "s390x")
	cfg := fmt.Sprintf("%s:\n  tls-verify: false\n  images:\n    team/app: []\n  platforms: [linux/amd64, linux/ppc64le]\n", src.Host)
	sources, err := syncer.ReadConfig(strings.NewReader(cfg), "sync.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := syncer.Options{Transports: e2eTransports, Sources: sources, Destination: "docker://" + dst.Host + "/m"}
	run := func() *syncer.Report {
		t.Helper()
		p, err := syncer.NewPlan(syncCtx(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := p.Run(syncCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	rep := run()
	if got, want := syncResults(rep), []string{
		"copied docker://" + dst.Host + "/m/app:v1", "failed docker://" + dst.Host + "/m/app:v2",
	}; !slices.Equal(got, want) {
		t.Fatalf("first run: %v, want %v", got, want)
	}
	if c := types.Classify(rep.Err()); c != types.ClassNotFound {
		t.Errorf("an index with none of the platforms: class %v, want not-found (%v)", c, rep.Err())
	}
	if got := indexPlatforms(t, dst.Host, "m/app", "v1"); !slices.Equal(got, []string{"amd64"}) {
		t.Errorf("mirrored v1 lists %v, want [amd64]", got)
	}

	// Upstream, v1 gains ppc64le (and its digest changes): the next run brings it.
	pushIndexOf(t, src.Host, "team/app", "v1", "app-v1", "amd64", "arm64", "ppc64le")
	rep = run()
	if got := syncResults(rep, syncer.ActionCopied); !slices.Equal(got, []string{"copied docker://" + dst.Host + "/m/app:v1"}) {
		t.Errorf("second run copied %v, want v1", got)
	}
	if got := indexPlatforms(t, dst.Host, "m/app", "v1"); !slices.Equal(got, []string{"amd64", "ppc64le"}) {
		t.Errorf("mirrored v1 lists %v, want [amd64 ppc64le]", got)
	}
}

// TestCopyPlatformsMissingStillFails keeps a copy's own --platform strict: a platform the
// index lacks fails the copy unless SkipMissingPlatforms says otherwise.
func TestCopyPlatformsMissingStillFails(t *testing.T) {
	t.Parallel()
	src, dst := testregistry.Start(t, testregistry.Options{}), testregistry.Start(t, testregistry.Options{})
	pushIndex(t, src.Host, "team/app", "v1", "app-v1")
	opts := &copier.Options{Platforms: []types.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "ppc64le"}}}
	_, err := copier.Image(syncCtx(t), e2eRef(t, "docker://"+dst.Host+"/m/app:v1"), e2eRef(t, "docker://"+src.Host+"/team/app:v1"), opts)
	if types.Classify(err) != types.ClassNotFound || !strings.Contains(err.Error(), "ppc64le") {
		t.Fatalf("copy with a missing platform: %v, want not found naming ppc64le", err)
	}
	opts.SkipMissingPlatforms = true
	if _, err := copier.Image(syncCtx(t), e2eRef(t, "docker://"+dst.Host+"/m/app:v1"), e2eRef(t, "docker://"+src.Host+"/team/app:v1"), opts); err != nil {
		t.Fatal(err)
	}
	if got := indexPlatforms(t, dst.Host, "m/app", "v1"); !slices.Equal(got, []string{"amd64"}) {
		t.Errorf("copied index lists %v, want [amd64]", got)
	}
}

// pushIndexOf pushes an index of one image per architecture, tagged tag.
func pushIndexOf(t testing.TB, host, repo, tag, name string, archs ...string) imgspecv1.Descriptor {
	t.Helper()
	idx := imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, arch := range archs {
		d := pushSingle(t, host, repo, "", name, arch)
		d.Platform = &imgspecv1.Platform{OS: "linux", Architecture: arch}
		idx.Manifests = append(idx.Manifests, d)
	}
	return pushJSON(t, host, repo, tag, idx, imgspecv1.MediaTypeImageIndex)
}

// deleteBlob deletes a blob from a repository of the registry at host.
func deleteBlob(t testing.TB, host, repo string, d digest.Digest) {
	t.Helper()
	regDo(t, http.MethodDelete, "http://"+host+"/v2/"+repo+"/blobs/"+d.String(), nil, nil, http.StatusAccepted)
}

// blobStatus returns the status of a HEAD of a blob in a repository of the registry at host.
func blobStatus(t testing.TB, host, repo string, d digest.Digest) int {
	t.Helper()
	resp, err := http.Head("http://" + host + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSyncForceRecursiveRepairsDeletedBlob deletes a layer of a mirrored image at the
// destination: the next plan still finds the image up to date from its manifest digest (as
// skopeo sync and regsync do), and --force-recursive checks every blob, copies the missing
// one back and reports that image repaired and the intact one up to date; a run after it finds
// both up to date again.
func TestSyncForceRecursiveRepairsDeletedBlob(t *testing.T) {
	t.Parallel()
	src, dst := testregistry.Start(t, testregistry.Options{}), testregistry.Start(t, testregistry.Options{})
	pushSingle(t, src.Host, "team/app", "1", "app-1", "amd64")
	pushIndex(t, src.Host, "team/app", "2", "app-2")
	opts := syncer.Options{
		Transports: e2eTransports, Sources: []syncer.Source{{Name: "docker://" + src.Host + "/team/app"}},
		Destination: "docker://" + dst.Host + "/m",
	}
	run := func(force bool) *syncer.Report {
		t.Helper()
		o := opts
		o.Copy.ForceRecursive = force
		p, err := syncer.NewPlan(syncCtx(t), o)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := p.Run(syncCtx(t))
		if err != nil || rep.Err() != nil {
			t.Fatalf("run: %v, %v", err, rep.Err())
		}
		return rep
	}
	run(false)
	// The own layer of image 2's arm64 instance.
	var idx imgspecv1.Index
	if err := json.Unmarshal(getManifestRaw(t, dst.Host, "m/app", "2"), &idx); err != nil {
		t.Fatal(err)
	}
	var arm imgspecv1.Manifest
	if err := json.Unmarshal(getManifestRaw(t, dst.Host, "m/app", idx.Manifests[1].Digest.String()), &arm); err != nil {
		t.Fatal(err)
	}
	lost := arm.Layers[1].Digest
	deleteBlob(t, dst.Host, "m/app", lost)

	if got := syncResults(run(false)); !slices.Equal(got, []string{
		"up-to-date docker://" + dst.Host + "/m/app:1", "up-to-date docker://" + dst.Host + "/m/app:2",
	}) {
		t.Fatalf("without --force-recursive: %v, want both up to date", got)
	}
	rep := run(true)
	want := map[string]syncer.Action{"1": syncer.ActionUpToDate, "2": syncer.ActionCopied}
	for _, r := range rep.Images {
		tag := r.Destination[strings.LastIndex(r.Destination, ":")+1:]
		if r.Action != want[tag] {
			t.Errorf("with --force-recursive, %s: %s (%s), want %s", r.Destination, r.Action, r.Reason, want[tag])
		}
		if tag == "2" && !strings.Contains(r.Reason, "lacked 1 blob") {
			t.Errorf("repaired image's reason %q, want it to say what was missing", r.Reason)
		}
	}
	if s := blobStatus(t, dst.Host, "m/app", lost); s != http.StatusOK {
		t.Errorf("the deleted blob after --force-recursive: HEAD %d, want 200", s)
	}
	if got := syncResults(run(true), syncer.ActionUpToDate); len(got) != 2 {
		t.Errorf("after the repair: %v up to date, want both", got)
	}

	// An instance manifest deleted from the index is written again too.
	amd := idx.Manifests[0].Digest
	deleteManifest(t, dst.Host, "m/app", amd)
	run(true)
	getManifestRaw(t, dst.Host, "m/app", amd.String()) // fails the test when missing
}

// deleteManifest deletes a manifest by digest from a repository of the registry at host.
func deleteManifest(t testing.TB, host, repo string, d digest.Digest) {
	t.Helper()
	regDo(t, http.MethodDelete, "http://"+host+"/v2/"+repo+"/manifests/"+d.String(), nil, nil, http.StatusAccepted)
}

// TestCLISyncDetailedExitCode runs a mirror from a script's point of view: with
// --detailed-exitcode a run (and a dry run) that copies or prunes something exits 10, one
// that finds everything up to date exits 0 and prints nothing with -q, and a failure keeps
// its class's code; without the flag a run that copied exits 0, as skopeo sync and regsync
// do.
func TestCLISyncDetailedExitCode(t *testing.T) {
	t.Parallel()
	src, dst := testregistry.Start(t, testregistry.Options{}), testregistry.Start(t, testregistry.Options{})
	pushSingle(t, src.Host, "team/app", "1", "app-1", "amd64")
	home := t.TempDir()
	from, to := "docker://"+src.Host+"/team/app", "docker://"+dst.Host+"/m"
	step := func(what string, want int, args ...string) cliResult {
		t.Helper()
		res := cliIn(t, home, "", append(append([]string{"sync", "-q"}, args...), from, to)...)
		if res.code != want {
			t.Fatalf("%s: exit %d, want %d\n%s%s", what, res.code, want, res.stdout, res.stderr)
		}
		return res
	}
	step("dry run of a new mirror", exitChangedCode, "--detailed-exitcode", "--dry-run")
	step("first run", exitChangedCode, "--detailed-exitcode")
	if res := step("unchanged run", 0, "--detailed-exitcode"); res.stdout+res.stderr != "" {
		t.Errorf("an unchanged run with -q printed %q", res.stdout+res.stderr)
	}
	step("unchanged dry run", 0, "--detailed-exitcode", "--dry-run")
	pushSingle(t, src.Host, "team/app", "2", "app-2", "amd64")
	step("run without the flag", 0)
	step("a missing tag", 3, "--detailed-exitcode", "--tag", "nope")
}

// exitChangedCode is cmd/imgcopy's exit status for a sync with --detailed-exitcode that
// changed the mirror.
const exitChangedCode = 10

// TestCLISyncReportPathCheckedFirst gives --report and --digestfile paths that cannot be
// written: the sync refuses them as usage errors before copying anything, rather than
// copying everything and then failing with the exit code of "not found".
func TestCLISyncReportPathCheckedFirst(t *testing.T) {
	t.Parallel()
	src, dst := testregistry.Start(t, testregistry.Options{}), testregistry.Start(t, testregistry.Options{})
	pushSingle(t, src.Host, "team/app", "1", "app-1", "amd64")
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--report", filepath.Join(dir, "missing", "report.json")},
		{"--report", dir},
		{"--digestfile", filepath.Join(dir, "missing", "digests")},
	} {
		res := cli(t, append(append([]string{"sync", "-q"}, args...), "docker://"+src.Host+"/team/app", "docker://"+dst.Host+"/m")...)
		if res.code != 2 || !strings.Contains(res.stderr, args[0]) {
			t.Errorf("%v: exit %d, want 2 naming the flag\n%s", args, res.code, res.stderr)
		}
	}
	if d := headDigest(t, e2eRef(t, "docker://"+dst.Host+"/m/app:1")); d != "" {
		t.Errorf("the sync copied %s before refusing the report path", d)
	}
}
