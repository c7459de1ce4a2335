package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	syncer "github.com/imgcopy/imgcopy/sync"
	"github.com/imgcopy/imgcopy/types"
)

// syncOnce plans and runs a sync and fails the test on any failure.
func syncOnce(t *testing.T, opts syncer.Options) *syncer.Report {
	t.Helper()
	opts.Transports = e2eTransports
	if opts.Copy.BlobInfoCache == nil {
		opts.Copy.BlobInfoCache = memory.New()
	}
	p, err := syncer.NewPlan(syncCtx(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Run(syncCtx(t))
	if err == nil {
		err = rep.Err()
	}
	if err != nil {
		t.Fatalf("sync %v → %s: %v", opts.Sources, opts.Destination, err)
	}
	return rep
}

// syncDigests maps each entry's destination name (after the store) to its digest.
func syncDigests(t *testing.T, rep *syncer.Report, store string) map[string]digest.Digest {
	t.Helper()
	out := map[string]digest.Digest{}
	for _, r := range rep.Images {
		name := r.Destination[len(store):]
		out[name] = r.Digest
	}
	return out
}

func sortedNames(m map[string]digest.Digest) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSyncThroughLocalStores syncs a registry's images into each local store that holds
// several images and from there into another registry: every image arrives with the digest
// it had at the source (multi-platform indexes too, except in a docker-archive, which keeps
// one platform per image, like docker save).
func TestSyncThroughLocalStores(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{})
	want := map[string]digest.Digest{}
	for _, tag := range []string{"1", "2", "3"} {
		want["app:"+tag] = pushSingle(t, src.Host, "team/app", tag, "app"+tag, "amd64").Digest
	}
	for _, tag := range []string{"a", "b"} {
		want["multi:"+tag] = pushIndex(t, src.Host, "team/multi", tag, "multi"+tag).Digest
	}
	sources := []syncer.Source{{Name: "docker://" + src.Host + "/team/app"}, {Name: "docker://" + src.Host + "/team/multi"}}
	cases := []struct {
		name, store string
		singleOnly  bool // the store keeps one platform of a multi-platform image
	}{
		{"oci layout", "oci:" + filepath.Join(t.TempDir(), "layout"), false},
		{"oci-archive", "oci-archive:" + filepath.Join(t.TempDir(), "bundle.tar"), false},
		{"docker-archive", "docker-archive:" + filepath.Join(t.TempDir(), "bundle.tar"), true},
		{"dir", "dir:" + filepath.Join(t.TempDir(), "tree"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := testregistry.Start(t, testregistry.Options{})
			opts := syncer.Options{Sources: sources, Destination: tc.store}
			if tc.singleOnly { // a docker-archive takes the running platform's image: make it amd64
				opts.Copy.SourceCtx = &types.SystemContext{OSChoice: "linux", ArchitectureChoice: "amd64"}
			}
			syncOnce(t, opts)
			out := syncDigests(t, syncOnce(t, syncer.Options{Sources: []syncer.Source{{Name: tc.store}}, Destination: "docker://" + dst.Host + "/mirror"}),
				"docker://"+dst.Host+"/mirror/")
			if !slices.Equal(sortedNames(out), sortedNames(want)) {
				t.Fatalf("images at the destination: %v, want %v", sortedNames(out), sortedNames(want))
			}
			for name, d := range want {
				if tc.singleOnly && strings.HasPrefix(name, "multi") {
					if out[name] == d || out[name] == "" {
						t.Errorf("%s: %s, want the amd64 image", name, out[name])
					}
					continue
				}
				if out[name] != d {
					t.Errorf("%s: digest %s after the round trip, want %s", name, out[name], d)
				}
			}
			// Syncing the store again finds everything there.
			again := syncOnce(t, syncer.Options{Sources: []syncer.Source{{Name: tc.store}}, Destination: "docker://" + dst.Host + "/mirror"})
			if n := again.Counts[syncer.ActionUpToDate]; n != len(want) {
				t.Errorf("second sync from the store: %v, want %d up to date", again.Counts, len(want))
			}
		})
	}
}

// TestSyncPruneLayout prunes a layout destination: the tags of a mapped repository that the
// selection no longer has go, the others stay, even one sharing the manifest of a pruned tag.
func TestSyncPruneLayout(t *testing.T) {
	t.Parallel()
	store := "oci:" + filepath.Join(t.TempDir(), "layout")
	rep := syncThenPrune(t, store)
	if got := syncResults(rep, syncer.ActionPruned); len(got) != 2 {
		t.Errorf("pruned %v, want app:2 and app:3", got)
	}
	names, err := e2eRef(t, store).(types.TagLister).ListTags(syncCtx(t), nil)
	sort.Strings(names)
	if err != nil || !slices.Equal(names, []string{"app:1", "app:same-as-3"}) {
		t.Errorf("layout names after prune: %v, %v", names, err)
	}
	e2eVerify(t, e2eRef(t, store+":app:same-as-3"), nil)
}

// TestSyncPruneDir prunes a dir: store: each name is a directory of its own, so pruning a name
// removes its directory (and nothing else), leaving no staging directory behind.
func TestSyncPruneDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tree")
	rep := syncThenPrune(t, "dir:"+dir)
	if got := syncResults(rep, syncer.ActionPruned); len(got) != 2 {
		t.Errorf("pruned %v, want app:2 and app:3", got)
	}
	entries, err := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if err != nil || !slices.Equal(names, []string{"app:1", "app:same-as-3"}) {
		t.Errorf("dir: store after prune holds %v (%v), want app:1 and app:same-as-3 only", names, err)
	}
	e2eVerify(t, e2eRef(t, "dir:"+filepath.Join(dir, "app:same-as-3")), nil)
}

// syncThenPrune syncs every tag of a repository (1, 2, 3 and same-as-3, an alias of 3) into
// store, then syncs tags 1 and same-as-3 alone with --prune, and returns that second report:
// app:2 and app:3 should be pruned, and app:same-as-3 kept although it shares app:3's image.
func syncThenPrune(t *testing.T, store string) *syncer.Report {
	t.Helper()
	src := testregistry.Start(t, testregistry.Options{})
	for _, tag := range []string{"1", "2", "3"} {
		pushSingle(t, src.Host, "team/app", tag, "app"+tag, "amd64")
	}
	pushSingle(t, src.Host, "team/app", "same-as-3", "app3", "amd64")
	syncOnce(t, syncer.Options{Sources: []syncer.Source{{Name: "docker://" + src.Host + "/team/app"}}, Destination: store})
	return syncOnce(t, syncer.Options{
		Sources:     []syncer.Source{{Name: "docker://" + src.Host + "/team/app", Tags: []string{"1", "same-as-3"}}},
		Destination: store, Prune: true,
	})
}

// TestSyncUnnamedLayoutImagesByTemplate syncs a layout whose images have no name, as
// `crane pull --format oci A B DIR` writes it: without a destination template they are
// skipped (nothing says where they go); with one, each is copied by digest into the
// repository the template names, keeping its digest.
func TestSyncUnnamedLayoutImagesByTemplate(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{})
	want := []string{
		string(pushSingle(t, src.Host, "team/app", "1", "unnamed1", "amd64").Digest),
		string(pushSingle(t, src.Host, "team/app", "2", "unnamed2", "amd64").Digest),
	}
	slices.Sort(want)
	dir := filepath.Join(t.TempDir(), "layout")
	syncOnce(t, syncer.Options{Sources: []syncer.Source{{Name: "docker://" + src.Host + "/team/app"}}, Destination: "oci:" + dir})
	indexFile := filepath.Join(dir, "index.json")
	b, err := os.ReadFile(indexFile)
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx["manifests"].([]any) {
		delete(m.(map[string]any), "annotations")
	}
	if b, err = json.Marshal(idx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(indexFile, b, 0o644); err != nil {
		t.Fatal(err)
	}

	dst := testregistry.Start(t, testregistry.Options{})
	mirror := "docker://" + dst.Host + "/mirror"
	rep := syncOnce(t, syncer.Options{Sources: []syncer.Source{{Name: "oci:" + dir}}, Destination: mirror})
	if n := rep.Counts[syncer.ActionSkipped]; n != 2 {
		t.Errorf("without a template: %v, want both images skipped", rep.Counts)
	}
	tmpl, err := syncer.ParseRepoTemplate("unnamed/app")
	if err != nil {
		t.Fatal(err)
	}
	rep = syncOnce(t, syncer.Options{Sources: []syncer.Source{{Name: "oci:" + dir, Destination: tmpl}}, Destination: mirror})
	var got []string
	for _, r := range rep.Images {
		if r.Action != syncer.ActionCopied || r.Destination != mirror+"/unnamed/app@"+string(r.Digest) {
			t.Errorf("with a template: %+v, want copied to %s/unnamed/app@DIGEST", r, mirror)
		}
		got = append(got, string(r.Digest))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("copied %v, want %v", got, want)
	}
}

// TestSyncArtifactsIntoDockerArchive mirrors a repository holding an image and a cosign
// signature tag into a docker-archive: the signature, which `docker load` could not load, is
// skipped with its reason (not a failure), and none of its blobs enters the archive.
func TestSyncArtifactsIntoDockerArchive(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{})
	img := pushSingle(t, src.Host, "team/app", "1", "signed", "amd64")
	empty := pushBlob(t, src.Host, "team/app", "application/vnd.oci.empty.v1+json", []byte("{}"))
	payload := pushBlob(t, src.Host, "team/app", "application/vnd.dev.cosign.simplesigning.v1+json", []byte(`{"critical":{"image":{"docker-manifest-digest":"`+string(img.Digest)+`"}}}`))
	sig := imgspecv1.Manifest{MediaType: imgspecv1.MediaTypeImageManifest, Config: empty, Layers: []imgspecv1.Descriptor{payload}}
	sig.SchemaVersion = 2
	pushJSON(t, src.Host, "team/app", "sha256-"+img.Digest.Encoded()+".sig", sig, imgspecv1.MediaTypeImageManifest)

	archive := filepath.Join(t.TempDir(), "bundle.tar")
	rep := syncOnce(t, syncer.Options{Sources: []syncer.Source{{Name: "docker://" + src.Host + "/team/app"}}, Destination: "docker-archive:" + archive})
	if rep.Counts[syncer.ActionCopied] != 1 || rep.Counts[syncer.ActionSkipped] != 1 {
		t.Fatalf("counts %v, want 1 copied and 1 skipped", rep.Counts)
	}
	for _, r := range rep.Images {
		if strings.HasSuffix(r.Destination, ".sig") && !strings.Contains(r.Reason, "not a container image") {
			t.Errorf("signature: %+v, want skipped as not a container image", r)
		}
	}
	members, _ := tarContents(t, archive)
	for _, d := range []digest.Digest{empty.Digest, payload.Digest} {
		if members["blobs/sha256/"+d.Encoded()] != 0 {
			t.Errorf("the archive holds the signature's blob %s: %v", d, members)
		}
	}
}

// TestSyncIntoWrongKindOfStore: a destination that its transport cannot read (a file named
// oci: or dir:, a directory named oci-archive:) fails the plan once, as a usage error, instead
// of failing every image the same way.
func TestSyncIntoWrongKindOfStore(t *testing.T) {
	t.Parallel()
	src := testregistry.Start(t, testregistry.Options{})
	for _, tag := range []string{"1", "2"} {
		pushSingle(t, src.Host, "team/app", tag, "app"+tag, "amd64")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a store"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{"oci:" + file, "dir:" + file, "oci-archive:" + t.TempDir()} {
		t.Run(dest[:strings.Index(dest, ":")], func(t *testing.T) {
			t.Parallel()
			p, err := syncer.NewPlan(syncCtx(t), syncer.Options{Transports: e2eTransports,
				Sources: []syncer.Source{{Name: "docker://" + src.Host + "/team/app"}}, Destination: dest})
			if types.Classify(err) != types.ClassUsage || !strings.Contains(err.Error(), "checking the destination "+dest) {
				t.Fatalf("plan %v, error %v: want one usage error for the destination", p, err)
			}
		})
	}
}
