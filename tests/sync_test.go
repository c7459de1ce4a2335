package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	syncer "github.com/imgcopy/imgcopy/sync"
	"github.com/imgcopy/imgcopy/types"
)

// syncScenario is a source registry with three repositories of five or more tags each (one of
// multi-platform images), a destination registry, and a configuration that mixes regex
// include and exclude with a semver range, renames a repository, selects a platform subset
// and names a tag that does not exist.
type syncScenario struct {
	src, dst *testregistry.Registry
	sources  []syncer.Source
	cache    types.BlobInfoCache
}

func newSyncScenario(t *testing.T, srcOpts testregistry.Options) *syncScenario {
	t.Helper()
	s := &syncScenario{src: testregistry.Start(t, srcOpts), dst: testregistry.Start(t, testregistry.Options{}), cache: memory.New()}
	for _, tag := range []string{"1.19.0", "1.20.0", "1.21.3", "1.22.0-rc1", "2.0.0", "latest"} {
		pushSingle(t, s.src.Host, "team/app", tag, "app-"+tag, "amd64")
	}
	for _, tag := range []string{"v1", "v2", "v3", "v3-debug", "edge"} {
		pushSingle(t, s.src.Host, "team/web", tag, "web-"+tag, "amd64")
	}
	for _, tag := range []string{"a", "b", "c", "d", "e"} {
		pushIndex(t, s.src.Host, "base/tool", tag, "tool-"+tag)
	}
	cfg := fmt.Sprintf(`%s:
  tls-verify: false
  repositories:
    team/app:
      semver: ">=1.20 <2"
      exclude: ['-rc']
    team/web:
      include: ['^v']
      exclude: ['-debug$']
      destination: "frontend/{{.Name}}"
    base/tool:
      tags: [a, b, c, missing]
      platforms: [linux/amd64]
`, s.src.Host)
	var err error
	if s.sources, err = syncer.ReadConfig(strings.NewReader(cfg), "sync.yaml", nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *syncScenario) options() syncer.Options {
	return syncer.Options{
		Transports: e2eTransports, Sources: s.sources, Destination: "docker://" + s.dst.Host + "/mirror",
		Copy: copier.Options{BlobInfoCache: s.cache}, RequestsPerRegistry: syncer.DefaultRequestsPerRegistry,
	}
}

func (s *syncScenario) plan(t *testing.T, opts syncer.Options) *syncer.Plan {
	t.Helper()
	p, err := syncer.NewPlan(syncCtx(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *syncScenario) run(t *testing.T, p *syncer.Plan) *syncer.Report {
	t.Helper()
	rep, err := p.Run(syncCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var syncWantPlan = []string{
	"copy app:1.20.0", "copy app:1.21.3",
	"copy frontend/web:v1", "copy frontend/web:v2", "copy frontend/web:v3",
	"copy tool:a", "copy tool:b", "copy tool:c",
	"fail tool:missing",
}

// TestSyncPlanRunAndIdempotentRerun plans and runs the scenario, then runs it again
// unchanged: the re-run costs no source manifest GET and no blob. With --referrers and
// --digest-tags the re-run also compares the referrers and digest tags of every up-to-date
// image, from listings alone: the only manifests it reads at the source are referrers
// indexes (sha256-<hex>, which distribution has instead of the referrers API).
func TestSyncPlanRunAndIdempotentRerun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		related bool
	}{{"plain", false}, {"referrers and digest tags", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSyncScenario(t, testregistry.Options{})
			opts := s.options()
			opts.Copy.Referrers, opts.Copy.DigestTags = tc.related, tc.related
			s.planRunAndRerun(t, opts)
		})
	}
}

func (s *syncScenario) planRunAndRerun(t *testing.T, opts syncer.Options) {
	plan := s.plan(t, opts)
	if got := syncPlanNames(plan); !slices.Equal(got, syncWantPlan) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(syncWantPlan, "\n"))
	}
	var planned []string
	for _, it := range plan.Items {
		if it.Action == syncer.ActionCopy {
			planned = append(planned, "copied "+it.Destination)
		}
	}
	sort.Strings(planned)

	rep := s.run(t, plan)
	if got := syncResults(rep, syncer.ActionCopied); !slices.Equal(got, planned) {
		t.Errorf("copied:\n%s\nthe dry-run plan said:\n%s", strings.Join(got, "\n"), strings.Join(planned, "\n"))
	}
	failures := rep.Failures()
	if len(failures) != 1 || !strings.HasSuffix(failures[0].Destination, "/mirror/tool:missing") || failures[0].ErrorClass != "not-found" {
		t.Fatalf("failures %+v, want the missing tag, not-found", failures)
	}
	if err := rep.Err(); types.Classify(err) != types.ClassNotFound {
		t.Errorf("report error %v has class %v, want not-found", err, types.Classify(err))
	}
	s.checkDestination(t)
	// The base layer every image shares crossed once: one GET at the source, one upload at
	// the destination; the other repositories mounted it.
	base := string(pushBlob(t, s.src.Host, "scratch", imgspecv1.MediaTypeImageLayerGzip, gzipBytes(t, syncBase)).Digest)
	if n := countRequests(s.src, http.MethodGet, "/blobs/"+base); n != 1 {
		t.Errorf("base layer fetched %d times from the source, want 1", n)
	}

	// Nothing changed: every image is up to date from HEADs (and listings) alone.
	s.src.ResetRequests()
	s.dst.ResetRequests()
	plan = s.plan(t, opts)
	rep = s.run(t, plan)
	want := []string{"fail tool:missing"}
	for _, w := range syncWantPlan[:8] {
		want = append(want, strings.Replace(w, "copy", "up-to-date", 1))
	}
	sort.Strings(want)
	if got := syncPlanNames(plan); !slices.Equal(got, want) {
		t.Errorf("re-run plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := manifestGETs(s.src.Requests()); len(got) != 0 {
		t.Errorf("unchanged re-run made %d manifest GETs at the source, want 0: %v", len(got), got)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if n := countRequests(s.dst, m, "/"); n != 0 {
			t.Errorf("unchanged re-run sent %d %s requests to the destination, want 0", n, m)
		}
	}
	if n := countRequests(s.src, http.MethodGet, "/blobs/") + countRequests(s.dst, http.MethodGet, "/blobs/"); n != 0 {
		t.Errorf("unchanged re-run transferred %d blobs", n)
	}
	if rep.BytesCopied != 0 || len(syncResults(rep, syncer.ActionCopied)) != 0 {
		t.Errorf("unchanged re-run copied %d bytes: %v", rep.BytesCopied, syncResults(rep, syncer.ActionCopied))
	}
}

// checkDestination checks what the first run wrote: unchanged digests for single images, an
// amd64-only index for the platform subset.
func (s *syncScenario) checkDestination(t *testing.T) {
	t.Helper()
	for _, c := range []struct{ src, dst string }{
		{"team/app:1.20.0", "mirror/app:1.20.0"},
		{"team/web:v3", "mirror/frontend/web:v3"},
	} {
		want := headDigest(t, e2eRef(t, "docker://"+s.src.Host+"/"+c.src))
		if got := headDigest(t, e2eRef(t, "docker://"+s.dst.Host+"/"+c.dst)); got != want {
			t.Errorf("%s: digest %s, want %s", c.dst, got, want)
		}
	}
	var idx imgspecv1.Index
	if err := json.Unmarshal(getManifestRaw(t, s.dst.Host, "mirror/tool", "a"), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Platform.Architecture != "amd64" {
		t.Errorf("tool:a index lists %+v, want linux/amd64 only", idx.Manifests)
	}
}

func TestSyncShardsSplitThePlan(t *testing.T) {
	t.Parallel()
	s := newSyncScenario(t, testregistry.Options{})
	full := syncPlanNames(s.plan(t, s.options()))
	var union []string
	for k := range 3 {
		opts := s.options()
		opts.Shard = syncer.Shard{Index: k, Count: 3}
		union = append(union, syncPlanNames(s.plan(t, opts))...)
	}
	sort.Strings(union)
	if !slices.Equal(union, full) { // equal as sorted lists: disjoint and complete
		t.Errorf("shards together:\n%s\nfull plan:\n%s", strings.Join(union, "\n"), strings.Join(full, "\n"))
	}
}

func TestSyncPrune(t *testing.T) {
	t.Parallel()
	s := newSyncScenario(t, testregistry.Options{})
	s.run(t, s.plan(t, s.options()))
	// Extra tags in two mapped repositories, and in a repository the sync does not map to.
	pushSingle(t, s.dst.Host, "mirror/app", "old", "old", "amd64")
	pushSingle(t, s.dst.Host, "mirror/app", "2.0.0", "filtered out", "amd64")
	pushSingle(t, s.dst.Host, "mirror/frontend/web", "gone", "gone", "amd64")
	pushSingle(t, s.dst.Host, "mirror/other", "keep", "other", "amd64")
	sig := "sha256-" + strings.Repeat("ab", 32) + ".sig" // a cosign signature tag: never pruned
	pushSingle(t, s.dst.Host, "mirror/app", sig, "signature", "amd64")
	opts := s.options()
	opts.Prune = true
	plan := s.plan(t, opts)
	var prune []string
	for _, it := range plan.Items {
		if it.Action == syncer.ActionPrune {
			prune = append(prune, it.Name)
		}
	}
	sort.Strings(prune)
	want := []string{"app:2.0.0", "app:old", "frontend/web:gone"}
	if !slices.Equal(prune, want) {
		t.Fatalf("--prune --dry-run lists %v, want %v", prune, want)
	}
	rep := s.run(t, plan)
	if got := syncResults(rep, syncer.ActionPruned); len(got) != 3 {
		t.Errorf("pruned %v", got)
	}
	for repo, tags := range map[string][]string{
		"mirror/app": {"1.20.0", "1.21.3", sig}, "mirror/frontend/web": {"v1", "v2", "v3"},
		"mirror/other": {"keep"}, "mirror/tool": {"a", "b", "c"},
	} {
		got, err := e2eRef(t, "docker://"+s.dst.Host+"/"+repo).(types.TagLister).ListTags(syncCtx(t), nil)
		sort.Strings(got)
		if err != nil || !slices.Equal(got, tags) {
			t.Errorf("%s after prune: %v, %v; want %v", repo, got, err, tags)
		}
	}
}

func TestSyncBrokenBlobFailsOnlyItsImage(t *testing.T) {
	t.Parallel()
	corrupt := &corruptingHandler{bad: map[string]bool{}}
	s := newSyncScenario(t, testregistry.Options{Wrap: corrupt.wrap})
	own := pushBlob(t, s.src.Host, "scratch", imgspecv1.MediaTypeImageLayerGzip, gzipBytes(t, []byte("layer of web-v2 for amd64\n")))
	corrupt.set(own.Digest.String())
	rep := s.run(t, s.plan(t, s.options()))
	var failed []string
	for _, f := range rep.Failures() {
		failed = append(failed, f.Destination[strings.Index(f.Destination, "/mirror/"):]+" "+f.ErrorClass)
	}
	sort.Strings(failed)
	want := []string{"/mirror/frontend/web:v2 verification", "/mirror/tool:missing not-found"}
	if !slices.Equal(failed, want) {
		t.Fatalf("failures %v, want %v", failed, want)
	}
	if n := len(syncResults(rep, syncer.ActionCopied)); n != 7 {
		t.Errorf("%d images copied, want the 7 others", n)
	}
	if d := headDigest(t, e2eRef(t, "docker://"+s.dst.Host+"/mirror/frontend/web:v2")); d != "" {
		t.Errorf("the image with the broken blob is at the destination: %s", d)
	}
	var fe *syncer.FailedError
	if err := rep.Err(); !errors.As(err, &fe) || types.Classify(err) != types.ClassOther || !errors.Is(err, types.ErrDigestMismatch) {
		t.Errorf("report error %v: want a FailedError of mixed classes that wraps the digest mismatch", err)
	}
}

func TestSyncFailFast(t *testing.T) {
	t.Parallel()
	corrupt := &corruptingHandler{bad: map[string]bool{}}
	s := newSyncScenario(t, testregistry.Options{Wrap: corrupt.wrap})
	// The first image copied (team/app:1.20.0, one image at a time) has a broken layer.
	corrupt.set(string(pushBlob(t, s.src.Host, "scratch", imgspecv1.MediaTypeImageLayerGzip, gzipBytes(t, []byte("layer of app-1.20.0 for amd64\n"))).Digest))
	opts := s.options()
	opts.FailFast, opts.ImageParallel = true, 1
	opts.Sources = opts.Sources[:2] // without the missing literal tag
	rep := s.run(t, s.plan(t, opts))
	if got := syncResults(rep, syncer.ActionFailed); len(got) != 1 || !strings.HasSuffix(got[0], "/mirror/app:1.20.0") {
		t.Fatalf("failed: %v, want app:1.20.0 alone", got)
	}
	if got := syncResults(rep, syncer.ActionCopied); len(got) != 0 {
		t.Errorf("copied after the failure: %v", got)
	}
	if n := len(syncResults(rep, syncer.ActionSkipped)); n != 4 {
		t.Errorf("%d images skipped, want the 4 others: %v", n, syncResults(rep))
	}

	// A failure found while planning (the missing literal tag) stops everything up front.
	opts = s.options()
	opts.FailFast = true
	rep = s.run(t, s.plan(t, opts))
	if got := syncResults(rep, syncer.ActionCopied); len(got) != 0 {
		t.Errorf("copied despite a planning failure: %v", got)
	}
	for _, r := range rep.Images {
		if r.Action == syncer.ActionSkipped && r.Reason != "not started: another image could not be planned (--fail-fast)" {
			t.Errorf("%s skipped because %q", r.Destination, r.Reason)
		}
	}
}

// TestSyncInterruptedThenResumed cancels a sync while one image's layer is in transfer: the
// images copied so far are complete, that one is absent, and the next run copies the rest.
func TestSyncInterruptedThenResumed(t *testing.T) {
	t.Parallel()
	blocked := make(chan struct{})
	var once gosync.Once
	var slow atomic.Value // the digest of the layer to hold
	slow.Store("")
	gate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d := slow.Load().(string); d != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
				once.Do(func() { close(blocked) })
				<-r.Context().Done() // hold the layer until the client gives up
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	s := newSyncScenario(t, testregistry.Options{Wrap: gate})
	slow.Store(string(pushBlob(t, s.src.Host, "scratch", imgspecv1.MediaTypeImageLayerGzip, gzipBytes(t, []byte("layer of web-v3 for amd64\n"))).Digest))
	opts := s.options()
	opts.Sources = opts.Sources[:2]
	plan := s.plan(t, opts)
	ctx, cancel := context.WithCancel(syncCtx(t))
	go func() {
		select {
		case <-blocked:
		case <-ctx.Done():
		}
		cancel()
	}()
	rep, err := plan.Run(ctx)
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("interrupted run: %v, report %v", err, rep)
	}
	web3 := e2eRef(t, "docker://"+s.dst.Host+"/mirror/frontend/web:v3")
	if d := headDigest(t, web3); d != "" {
		t.Errorf("the interrupted image is at the destination: %s", d)
	}
	for _, r := range rep.Images {
		if r.Action == syncer.ActionCopied {
			e2eVerify(t, e2eRef(t, r.Destination), nil) // complete: every blob there and valid
		}
	}
	slow.Store("")
	rep = s.run(t, s.plan(t, opts))
	if rep.Err() != nil || headDigest(t, web3) == "" {
		t.Fatalf("resumed run: %v; %s: %s", rep.Err(), types.ImageName(web3), headDigest(t, web3))
	}
	if n := rep.Counts[syncer.ActionCopied] + rep.Counts[syncer.ActionUpToDate]; n != 5 {
		t.Errorf("resumed run: %v, want the 5 images there", rep.Counts)
	}
}

// TestSyncPlanChecksLiteralDigests: a literal digest the destination lacks must exist at the
// source, so that a dry run reports a missing one, as it does a missing literal tag, rather
// than planning a copy that then fails.
func TestSyncPlanChecksLiteralDigests(t *testing.T) {
	t.Parallel()
	src, dst := testregistry.Start(t, testregistry.Options{}), testregistry.Start(t, testregistry.Options{})
	present := pushSingle(t, src.Host, "team/app", "v1", "app-v1", "amd64").Digest
	missing := "sha256:" + strings.Repeat("0", 64)
	cfg := fmt.Sprintf("%s:\n  tls-verify: false\n  images:\n    team/app: [%q, %q]\n", src.Host, present, missing)
	sources, err := syncer.ReadConfig(strings.NewReader(cfg), "sync.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := syncer.NewPlan(syncCtx(t), syncer.Options{Transports: e2eTransports, Sources: sources, Destination: "docker://" + dst.Host + "/mirror"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*syncer.Item{}
	for _, it := range p.Items {
		got[it.SourceDigest.String()] = it
	}
	if it := got[present.String()]; it == nil || it.Action != syncer.ActionCopy {
		t.Errorf("present digest: %+v, want copy", it)
	}
	if it := got[missing]; it == nil || it.Action != syncer.ActionFail || types.Classify(it.Err) != types.ClassNotFound {
		t.Errorf("missing digest: %+v, want fail (not found)", it)
	}
}
