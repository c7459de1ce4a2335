package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	syncer "github.com/imgcopy/imgcopy/sync"
	"github.com/imgcopy/imgcopy/types"
)

// The sync tests push tiny images straight into an in-process registry over HTTP: a base
// layer shared by every image, a layer of their own and a config, so that images differ in
// digest, share blobs, and take a few milliseconds each.

// syncBase is the layer every test image shares (a sync moves it once per destination).
var syncBase = []byte("shared base layer of every sync test image\n")

// pushJSON stores a manifest under ref (a tag; "" for by digest) and returns its descriptor.
func pushJSON(t testing.TB, host, repo, ref string, v any, mediaType string) imgspecv1.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if ref == "" {
		ref = digest.FromBytes(b).String()
	}
	return pushManifest(t, host, repo, ref, mediaType, b)
}

// pushSingle pushes a one-platform image whose own layer and config depend on name, tagged
// tag (or untagged when tag is "").
func pushSingle(t testing.TB, host, repo, tag, name, arch string) imgspecv1.Descriptor {
	t.Helper()
	var layers []imgspecv1.Descriptor
	var diffIDs []digest.Digest
	for _, content := range [][]byte{syncBase, []byte("layer of " + name + " for " + arch + "\n")} {
		layers = append(layers, pushBlob(t, host, repo, imgspecv1.MediaTypeImageLayerGzip, gzipBytes(t, content)))
		diffIDs = append(diffIDs, digest.FromBytes(content))
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": arch, "os": "linux", "config": map[string]any{"Labels": map[string]string{"name": name}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		t.Fatal(err)
	}
	config := pushBlob(t, host, repo, imgspecv1.MediaTypeImageConfig, cfg)
	m := imgspecv1.Manifest{MediaType: imgspecv1.MediaTypeImageManifest, Config: config, Layers: layers}
	m.SchemaVersion = 2
	return pushJSON(t, host, repo, tag, m, imgspecv1.MediaTypeImageManifest)
}

// gzipBytes compresses b deterministically (no name, no time in the header).
func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pushIndex pushes an amd64 and an arm64 image and an index of both, tagged tag.
func pushIndex(t testing.TB, host, repo, tag, name string) imgspecv1.Descriptor {
	t.Helper()
	return pushIndexOf(t, host, repo, tag, name, "amd64", "arm64")
}

// syncCtx bounds a test's sync.
func syncCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// syncPlanNames returns "ACTION NAME" of every plan item, sorted.
func syncPlanNames(p *syncer.Plan) []string {
	var out []string
	for _, it := range p.Items {
		name := it.Name
		if name == "" {
			name = it.Source
		}
		out = append(out, string(it.Action)+" "+name)
	}
	sort.Strings(out)
	return out
}

// syncResults returns "ACTION DESTINATION" of every report entry whose action is in actions
// (all when none), sorted.
func syncResults(rep *syncer.Report, actions ...syncer.Action) []string {
	var out []string
	for _, r := range rep.Images {
		if len(actions) == 0 || containsAction(actions, r.Action) {
			out = append(out, string(r.Action)+" "+r.Destination)
		}
	}
	sort.Strings(out)
	return out
}

func containsAction(list []syncer.Action, a syncer.Action) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// countRequests counts the recorded requests with method whose path contains part.
func countRequests(reg *testregistry.Registry, method, part string) int {
	n := 0
	for _, r := range reg.Requests() {
		if r.Method == method && strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}

// manifestGETs returns "GET PATH" of the manifest GETs among reqs, other than those of
// referrers indexes (tags sha256-<hex>): where a registry has no referrers API, reading that
// tag is how its referrers are listed.
func manifestGETs(reqs []testregistry.RequestRecord) []string {
	var out []string
	for _, r := range reqs {
		if r.Method == http.MethodGet && strings.Contains(r.Path, "/manifests/") && !manifest.IsFallbackTag(path.Base(r.Path)) {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// headDigest returns the digest ref (docker://…) has in its registry, "" when none.
func headDigest(t testing.TB, ref types.ImageReference) digest.Digest {
	t.Helper()
	d, err := ref.(types.ManifestDigester).ManifestDigest(context.Background(), nil)
	if types.Classify(err) == types.ClassNotFound {
		return ""
	}
	if err != nil {
		t.Fatalf("resolving %s: %v", types.ImageName(ref), err)
	}
	return d
}

// corruptingHandler serves altered bytes for the blobs in bad (same length, so that only the
// digest check can notice).
type corruptingHandler struct {
	mu  sync.Mutex
	bad map[string]bool // digests
}

func (c *corruptingHandler) set(d string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bad[d] = true
}

func (c *corruptingHandler) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		corrupt := false
		for d := range c.bad {
			corrupt = corrupt || (r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d))
		}
		c.mu.Unlock()
		if !corrupt {
			next.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}}
		next.ServeHTTP(rec, r)
		b := rec.body.Bytes()
		if len(b) > 0 {
			b[len(b)/2] ^= 0xff
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(b)
	})
}

// bufferedResponse records a handler's response.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(s int)   { b.status = s }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
