package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
	syncer "github.com/imgcopy/imgcopy/sync"
)

// TestSyncReferrers runs `imgcopy sync --referrers --digest-tags` on a repository holding a
// signed image (a signature, an SBOM, an attestation, a signature of the SBOM and a cosign
// signature tag) and an unsigned one, into a registry of the same kind: distribution (no
// referrers API: referrers indexes under sha256-<hex> tags) and go-containerregistry's (the
// API). The plan holds the two images only (the sha256-* tags travel with theirs); every
// artifact and the tag arrive with their digests; an unchanged re-run writes nothing and
// reads no manifest at the source but referrers indexes; a referrer added at the source and
// a re-signed tag arrive on the next run although the image is up to date, without any of
// the image's blobs crossing again.
func TestSyncReferrers(t *testing.T) {
	t.Parallel()
	for _, kind := range refRegistryKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := newRefScenario(t, kind)
			pushSingle(t, s.src.host, s.repo, "v2", "unsigned", "amd64")
			dst := startRefRegistry(t, kind, nil)
			sync := newRefSync(t, s, dst)

			plan := sync.run(t, "--dry-run")
			if got := plan.names(); !slices.Equal(got, []string{"copy mirror/signed:v1", "copy mirror/signed:v2"}) {
				t.Fatalf("plan %v, want the two images alone", got)
			}
			rep := sync.run(t)
			if got := rep.names(); !slices.Equal(got, []string{"copied mirror/signed:v1", "copied mirror/signed:v2"}) {
				t.Fatalf("run %v", got)
			}
			if n := rep.entry(t, "mirror/signed:v1").RelatedCopied; n != 5 {
				t.Errorf("v1: %d related manifests written, want the 4 artifacts and the tag", n)
			}
			s.checkArrived(t, dst.host, "mirror/signed")
			s.checkSigTag(t, dst.host)

			sync.unchanged(t)

			// The source changes, while the image stays: it is signed again (its cosign tag
			// names another manifest), then its attestation gets a signature.
			var attSig refArtifact
			for _, change := range []func() []byte{
				func() []byte {
					s.sigTagBody = cosignSignature(t, s.src.host, s.repo, s.imageDesc.Digest, "application/vnd.dsse.envelope.v1+json")
					pushManifest(t, s.src.host, s.repo, s.sigTag, imgspecv1.MediaTypeImageManifest, s.sigTagBody)
					return s.sigTagBody
				},
				func() []byte {
					attSig = pushArtifact(t, s.src, s.repo, "att-sig", s.artifacts[2].desc, refTypeSig)
					s.artifacts = append(s.artifacts, attSig)
					return attSig.body
				},
			} {
				s.syncChange(t, sync, change())
			}
			if got := rawReferrers(t, dst.host, "mirror/signed", s.artifacts[2].desc.Digest); !slices.Equal(got, []string{attSig.desc.Digest.String()}) {
				t.Errorf("referrers of the attestation at the destination: %v, want its signature", got)
			}
			s.checkArrived(t, dst.host, "mirror/signed")
			s.checkSigTag(t, dst.host)
			sync.unchanged(t)
		})
	}
}

// syncChange syncs after one related manifest (body) was added or changed at the source: the
// plan copies v1 although the image is up to date, and the run writes that manifest alone,
// without any blob but its own crossing.
func (s *refScenario) syncChange(t *testing.T, sync *refSync, body []byte) {
	t.Helper()
	s.src.resetWrites()
	plan := sync.run(t, "--dry-run")
	if e := plan.entry(t, "mirror/signed:v1"); e.Action != syncer.ActionCopy || !strings.Contains(e.Reason, "lacks") {
		t.Errorf("v1 after the source changed: %s (%s), want a copy of what the destination lacks", e.Action, e.Reason)
	}
	if e := plan.entry(t, "mirror/signed:v2"); e.Action != syncer.ActionUpToDate {
		t.Errorf("v2: %s (%s), want up to date", e.Action, e.Reason)
	}
	rep := sync.run(t)
	if e := rep.entry(t, "mirror/signed:v1"); e.Action != syncer.ActionCopied || e.RelatedCopied != 1 {
		t.Errorf("v1: %s, %d related written; want the changed one alone", e.Action, e.RelatedCopied)
	}
	allowed := blobsOf(t, body)
	for _, r := range s.src.readRequests() {
		if d := blobGET(r); d != "" && !allowed[d] {
			t.Errorf("blob %s crossed again", d)
		}
	}
}

// refSync runs imgcopy sync --referrers --digest-tags from a scenario's repository into the
// prefix "mirror" of a registry, with one HOME (so one blob-info cache) for every run.
type refSync struct {
	s         *refScenario
	dst       *refRegistry // nil for a local destination
	home      string
	report    string
	src, dest string
	prefix    string   // of destination names in the report, before REPO:TAG
	extra     []string // flags of every run
}

func newRefSync(t *testing.T, s *refScenario, dst *refRegistry) *refSync {
	r := newLocalRefSync(t, s, "docker://"+s.src.host+"/"+s.repo, "docker://"+dst.host+"/mirror", "docker://"+dst.host+"/")
	r.dst = dst
	return r
}

func newLocalRefSync(t *testing.T, s *refScenario, src, dest, prefix string) *refSync {
	return &refSync{s: s, home: t.TempDir(), report: filepath.Join(t.TempDir(), "report.json"), src: src, dest: dest, prefix: prefix}
}

// run runs the sync with extra flags and returns its report.
func (r *refSync) run(t *testing.T, extra ...string) refReport {
	t.Helper()
	args := append(append([]string{"sync", "--referrers", "--digest-tags", "--report", r.report}, r.extra...), extra...)
	res := cliIn(t, r.home, "", append(args, r.src, r.dest)...)
	if res.code != 0 {
		t.Fatalf("imgcopy %s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	b, err := os.ReadFile(r.report)
	var rep syncer.Report
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	return refReport{rep, r.prefix}
}

// unchanged re-runs the sync and checks that it wrote nothing, transferred no blob and read
// no manifest at the source but referrers indexes.
func (r *refSync) unchanged(t *testing.T) {
	t.Helper()
	r.s.src.resetWrites()
	r.dst.resetWrites()
	rep := r.run(t)
	if got := rep.names(); !slices.Equal(got, []string{"up-to-date mirror/signed:v1", "up-to-date mirror/signed:v2"}) {
		t.Errorf("unchanged re-run: %v", got)
	}
	if w := r.dst.writeRequests(); len(w) != 0 {
		t.Errorf("unchanged re-run wrote %v", w)
	}
	for _, req := range append(r.s.src.readRequests(), r.dst.readRequests()...) {
		if blobGET(req) != "" {
			t.Errorf("unchanged re-run transferred a blob: %s", req)
		}
	}
	for _, req := range r.s.src.readRequests() {
		if strings.HasPrefix(req, "GET ") && strings.Contains(req, "/manifests/") && !manifest.IsFallbackTag(path.Base(req)) {
			t.Errorf("unchanged re-run read a manifest at the source: %s", req)
		}
	}
}

// refReport is a sync report with the destination registry's prefix to trim from names.
type refReport struct {
	syncer.Report
	prefix string
}

// names returns "ACTION REPO:TAG" of every entry, sorted.
func (r refReport) names() []string {
	var out []string
	for _, e := range r.Images {
		out = append(out, string(e.Action)+" "+strings.TrimPrefix(e.Destination, r.prefix))
	}
	return sortedStrings(out)
}

// entry returns the entry of the destination name (REPO:TAG).
func (r refReport) entry(t *testing.T, name string) syncer.Result {
	t.Helper()
	for _, e := range r.Images {
		if e.Destination == r.prefix+name {
			return e
		}
	}
	t.Fatalf("no report entry for %s in %v", name, r.names())
	return syncer.Result{}
}

// checkSigTag checks that the cosign signature tag is at the destination byte for byte.
func (s *refScenario) checkSigTag(t *testing.T, host string) {
	t.Helper()
	if got := getManifestRaw(t, host, "mirror/signed", s.sigTag); !bytes.Equal(got, s.sigTagBody) {
		t.Errorf("signature tag %s differs at the destination", s.sigTag)
	}
}

// blobsOf returns the config and layer digests of the manifests bodies.
func blobsOf(t *testing.T, bodies ...[]byte) map[digest.Digest]bool {
	t.Helper()
	out := map[digest.Digest]bool{}
	for _, b := range bodies {
		var m imgspecv1.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out[m.Config.Digest] = true
		for _, l := range m.Layers {
			out[l.Digest] = true
		}
	}
	return out
}

// blobGET returns the digest a "GET /v2/…/blobs/DIGEST" request fetched, "" for any other.
func blobGET(req string) digest.Digest {
	if !strings.HasPrefix(req, "GET ") || !strings.Contains(req, "/blobs/sha256:") {
		return ""
	}
	return digest.Digest(path.Base(req))
}

// TestSyncReferrersThroughStores syncs the signed repository into each local store and, from
// those that hold artifacts (an OCI layout, an oci-archive), into a new registry, with
// --referrers --digest-tags: an unchanged re-sync into the store finds everything up to date
// (a docker-archive, which cannot hold artifacts, too: it says what it leaves out rather than
// copying again), and every artifact arrives in the second registry with its digest.
func TestSyncReferrersThroughStores(t *testing.T) {
	t.Parallel()
	s := newRefScenario(t, "ggcr")
	for _, tc := range []struct {
		kind, file string
		holds      bool
	}{
		{"oci", "bundle", true},
		{"oci-archive", "bundle.tar", true},
		{"docker-archive", "bundle.tar", false},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			store := tc.kind + ":" + filepath.Join(t.TempDir(), tc.file)
			name := "signed:v1"
			if tc.kind == "docker-archive" {
				name = "docker.io/app/signed:v1" // a docker-archive names images by full reference
			}
			into := newLocalRefSync(t, s, "docker://"+s.src.host+"/"+s.repo, store, store+":")
			if tc.kind == "docker-archive" {
				into.extra = []string{"--dest-repo", "app/{{.Name}}"}
			}
			for _, want := range []string{"copied " + name, "up-to-date " + name} {
				if got := into.run(t).names(); !slices.Equal(got, []string{want}) {
					t.Errorf("sync into the store: %v, want %v", got, want)
				}
			}
			if !tc.holds {
				// What could not go into the store is in the report, not only in a warning.
				e := into.run(t, "--dest-repo", "other/{{.Name}}").entry(t, "docker.io/other/signed:v1")
				if left := strings.Join(e.LeftOut, "\n"); e.Action != syncer.ActionCopied || !strings.Contains(left, "cannot hold artifacts") ||
					!strings.Contains(left, "referrer "+s.artifacts[1].desc.Digest.String()) || !strings.Contains(left, "tag "+s.sigTag) {
					t.Errorf("into a store without referrers: %s, left out %q; want copied, the artifacts and the tag left out", e.Action, e.LeftOut)
				}
				return
			}
			dst := startRefRegistry(t, "distribution", nil)
			back := newLocalRefSync(t, s, store, "docker://"+dst.host+"/mirror", "docker://"+dst.host+"/")
			e := back.run(t).entry(t, "mirror/signed:v1")
			if e.Action != syncer.ActionCopied || e.RelatedCopied != 5 || e.Digest != s.imageDesc.Digest {
				t.Errorf("from the store: %s %s, %d related written; want %s with the 4 artifacts and the tag", e.Action, e.Digest, e.RelatedCopied, s.imageDesc.Digest)
			}
			s.checkArrived(t, dst.host, "mirror/signed")
			s.checkSigTag(t, dst.host)
		})
	}
}

// TestSyncReferrersTypeStaysUpToDate syncs only the signatures (--referrers-type) from a
// registry that lists every artifact with a wrong artifactType (go-containerregistry's
// reports the config's type): the re-run reads the other artifacts' manifests to learn
// their type, and finds the image up to date rather than copying it again each time.
func TestSyncReferrersTypeStaysUpToDate(t *testing.T) {
	t.Parallel()
	s := newRefScenario(t, "ggcr")
	dst := startRefRegistry(t, "distribution", nil)
	sync := newRefSync(t, s, dst)
	if e := sync.run(t, "--referrers-type", refTypeSig).entry(t, "mirror/signed:v1"); e.RelatedCopied != 2 {
		t.Errorf("%d related written, want the signature and the tag", e.RelatedCopied)
	}
	dst.resetWrites()
	if e := sync.run(t, "--referrers-type", refTypeSig).entry(t, "mirror/signed:v1"); e.Action != syncer.ActionUpToDate {
		t.Errorf("re-run: %s (%s), want up to date", e.Action, e.Reason)
	}
	if w := dst.writeRequests(); len(w) != 0 {
		t.Errorf("re-run wrote %v", w)
	}
}
