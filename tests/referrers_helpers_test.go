package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// Registries of the referrers tests: "distribution" (CNCF distribution v3 in process, no
// referrers API: the tag schema is used) and "ggcr" (go-containerregistry's pkg/registry with
// the referrers API; it reports config.mediaType as artifactType and sends no OCI-Subject).
var refRegistryKinds = []string{"distribution", "ggcr"}

// refRegistry is a running registry of the referrers tests; it records the write requests
// (PUT, POST, PATCH, DELETE) and the reads (GET, HEAD) it answered.
type refRegistry struct {
	kind string
	host string
	mu   sync.Mutex
	// writes and reads are "METHOD PATH" of every request, in order.
	writes, reads []string
}

func (r *refRegistry) writeRequests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func (r *refRegistry) readRequests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reads...)
}

func (r *refRegistry) resetWrites() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes, r.reads = nil, nil
}

// record wraps a registry handler to note requests; then, when set, wrap.
func (r *refRegistry) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			r.writes = append(r.writes, req.Method+" "+req.URL.Path)
		} else {
			r.reads = append(r.reads, req.Method+" "+req.URL.Path)
		}
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

// startRefRegistry starts a registry of kind; wrap (may be nil) wraps its handler.
func startRefRegistry(t *testing.T, kind string, wrap func(http.Handler) http.Handler) *refRegistry {
	t.Helper()
	r := &refRegistry{kind: kind}
	chain := func(h http.Handler) http.Handler {
		if wrap != nil {
			h = wrap(h)
		}
		return r.record(h)
	}
	switch kind {
	case "distribution":
		r.host = testregistry.Start(t, testregistry.Options{Wrap: chain}).Host
	case "ggcr":
		h := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0)))
		srv := httptest.NewServer(chain(h))
		t.Cleanup(srv.Close)
		r.host = strings.TrimPrefix(srv.URL, "http://")
	default:
		t.Fatalf("unknown registry kind %q", kind)
	}
	return r
}

// regDo sends one request to a test registry and returns the response body; it fails the
// test on a transport error or a status other than want.
func regDo(t testing.TB, method, url string, hdr http.Header, body []byte, want int) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want != 0 && resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	return resp, b
}

// pushBlob uploads data to repo (POST, then PUT ?digest=) and returns its descriptor.
func pushBlob(t testing.TB, host, repo, mediaType string, data []byte) imgspecv1.Descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	resp, _ := regDo(t, http.MethodPost, "http://"+host+"/v2/"+repo+"/blobs/uploads/", nil, nil, http.StatusAccepted)
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	regDo(t, http.MethodPut, loc.String(), http.Header{"Content-Type": {"application/octet-stream"}}, data, http.StatusCreated)
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// pushManifest PUTs a manifest under ref (a tag or digest) and returns its descriptor.
func pushManifest(t testing.TB, host, repo, ref, mediaType string, body []byte) imgspecv1.Descriptor {
	t.Helper()
	regDo(t, http.MethodPut, "http://"+host+"/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {mediaType}}, body, http.StatusCreated)
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(body), Size: int64(len(body))}
}

// getManifest GETs a manifest's bytes by tag or digest.
func getManifestRaw(t testing.TB, host, repo, ref string) []byte {
	t.Helper()
	_, b := regDo(t, http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+ref,
		http.Header{"Accept": manifest.SupportedMIMETypes()}, nil, http.StatusOK)
	return b
}

// Artifact types of the scenario: what cosign, syft and in-toto tools push.
const (
	refTypeSig  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	refTypeSBOM = "application/spdx+json"
	refTypeAtt  = "application/vnd.in-toto+json"
)

// refArtifact is an artifact pushed by refScenario.
type refArtifact struct {
	name     string
	desc     imgspecv1.Descriptor // the manifest
	body     []byte
	subject  digest.Digest
	artType  string
	payloads []imgspecv1.Descriptor
}

// buildArtifact returns an OCI 1.1 artifact manifest (empty config, one layer) referring to
// subject, and its blobs.
func buildArtifact(subject imgspecv1.Descriptor, artifactType, payload string) ([]byte, map[digest.Digest][]byte) {
	empty := []byte("{}")
	layer := []byte(payload)
	m := imgspecv1.Manifest{
		Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeEmptyJSON, Digest: digest.FromBytes(empty), Size: 2},
		Layers:       []imgspecv1.Descriptor{{MediaType: artifactType, Digest: digest.FromBytes(layer), Size: int64(len(layer))}},
		Subject:      &subject,
		Annotations:  map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.payload": payload},
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b, map[digest.Digest][]byte{digest.FromBytes(empty): empty, digest.FromBytes(layer): layer}
}

// pushArtifact pushes an artifact's blobs and manifest (by digest) to repo; on a registry
// without the referrers API it also adds it to the subject's tag-schema index, as a client
// following the spec (regctl, oras) does.
func pushArtifact(t testing.TB, reg *refRegistry, repo, name string, subject imgspecv1.Descriptor, artifactType string) refArtifact {
	t.Helper()
	body, blobs := buildArtifact(subject, artifactType, name+" of "+subject.Digest.String())
	for _, b := range blobs {
		pushBlob(t, reg.host, repo, "application/octet-stream", b)
	}
	desc := pushManifest(t, reg.host, repo, digest.FromBytes(body).String(), imgspecv1.MediaTypeImageManifest, body)
	if reg.kind == "distribution" {
		tag := manifest.FallbackTag(subject.Digest)
		var cur []byte
		if resp, b := regDo(t, http.MethodGet, "http://"+reg.host+"/v2/"+repo+"/manifests/"+tag,
			http.Header{"Accept": {imgspecv1.MediaTypeImageIndex}}, nil, 0); resp.StatusCode == http.StatusOK {
			cur = b
		}
		rd, err := manifest.ReferrerDescriptor(body, imgspecv1.MediaTypeImageManifest)
		if err != nil {
			t.Fatal(err)
		}
		next, _, err := manifest.AddReferrers(cur, []imgspecv1.Descriptor{rd})
		if err != nil {
			t.Fatal(err)
		}
		pushManifest(t, reg.host, repo, tag, imgspecv1.MediaTypeImageIndex, next)
	}
	return refArtifact{name: name, desc: desc, body: body, subject: subject.Digest, artType: artifactType}
}

// refScenario is an image with a signature, an SBOM and an attestation, and a signature of
// the SBOM, in repository repo of a source registry.
type refScenario struct {
	src       *refRegistry
	repo      string
	image     *fixtures.Layout
	imageDesc imgspecv1.Descriptor
	artifacts []refArtifact // sig, sbom, att, sbom-sig
	// sigTag and sigTagBody are a cosign-format signature tag of the image.
	sigTag     string
	sigTagBody []byte
}

// newRefScenario pushes the scenario to a new registry of kind.
func newRefScenario(t *testing.T, kind string) *refScenario {
	t.Helper()
	s := &refScenario{src: startRefRegistry(t, kind, nil), repo: "app/signed"}
	l, fx := e2eFixture(t, fixtures.Options{})
	e2eCopy(t, e2eRef(t, "docker://"+s.src.host+"/"+s.repo+":v1"), fx, nil)
	s.image = l
	s.imageDesc = imgspecv1.Descriptor{MediaType: l.ManifestMIMEType, Digest: l.ManifestDigest, Size: int64(len(l.Manifest))}
	sig := pushArtifact(t, s.src, s.repo, "sig", s.imageDesc, refTypeSig)
	sbom := pushArtifact(t, s.src, s.repo, "sbom", s.imageDesc, refTypeSBOM)
	att := pushArtifact(t, s.src, s.repo, "att", s.imageDesc, refTypeAtt)
	sbomSig := pushArtifact(t, s.src, s.repo, "sbom-sig", sbom.desc, refTypeSig)
	s.artifacts = []refArtifact{sig, sbom, att, sbomSig}
	s.sigTag = manifest.DigestTagPrefix(s.imageDesc.Digest) + "sig"
	s.sigTagBody = cosignSignature(t, s.src.host, s.repo, s.imageDesc.Digest, "application/vnd.dev.cosign.simplesigning.v1+json")
	pushManifest(t, s.src.host, s.repo, s.sigTag, imgspecv1.MediaTypeImageManifest, s.sigTagBody)
	return s
}

// rawReferrers lists the referrers of subject the way another client would: the registry's
// referrers API, else the tag-schema index. It returns the digests, sorted.
func rawReferrers(t testing.TB, host, repo string, subject digest.Digest) []string {
	t.Helper()
	resp, b := regDo(t, http.MethodGet, "http://"+host+"/v2/"+repo+"/referrers/"+subject.String(),
		http.Header{"Accept": {imgspecv1.MediaTypeImageIndex}}, nil, 0)
	if resp.StatusCode != http.StatusOK {
		resp, b = regDo(t, http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+manifest.FallbackTag(subject),
			http.Header{"Accept": {imgspecv1.MediaTypeImageIndex}}, nil, 0)
		if resp.StatusCode == http.StatusNotFound {
			return nil
		}
	}
	var idx imgspecv1.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("referrers of %s: %v: %s", subject, err, b)
	}
	var out []string
	for _, d := range idx.Manifests {
		out = append(out, d.Digest.String())
	}
	return sortedStrings(out)
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// wantReferrers returns the digests of the scenario's artifacts referring to subject, sorted.
func (s *refScenario) wantReferrers(subject digest.Digest, keep func(refArtifact) bool) []string {
	var out []string
	for _, a := range s.artifacts {
		if a.subject == subject && (keep == nil || keep(a)) {
			out = append(out, a.desc.Digest.String())
		}
	}
	return sortedStrings(out)
}

// cosignSignature returns a manifest in the format cosign stores under sha256-<hex>.sig (and,
// with other layer types, .att and .sbom): an OCI image manifest whose one layer is the signed
// payload and carries the signature as an annotation. The blobs are pushed to repo.
func cosignSignature(t testing.TB, host, repo string, signed digest.Digest, layerType string) []byte {
	t.Helper()
	payload := []byte(`{"critical":{"identity":{"docker-reference":"` + host + "/" + repo + `"},"image":{"docker-manifest-digest":"` +
		signed.String() + `"},"type":"cosign container image signature"},"optional":null}`)
	layer := pushBlob(t, host, repo, layerType, payload)
	layer.Annotations = map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQDfake" + signed.Encoded()[:8]}
	cfg := []byte(`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"",` +
		`"rootfs":{"type":"layers","diff_ids":["` + layer.Digest.String() + `"]},"config":{}}`)
	config := pushBlob(t, host, repo, imgspecv1.MediaTypeImageConfig, cfg)
	b, err := json.Marshal(imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: config, Layers: []imgspecv1.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// multiPlatformSource starts a registry of kind holding the multi-platform fixture as repo:v1.
func multiPlatformSource(t *testing.T, kind, repo string) (*refRegistry, *fixtures.Layout) {
	t.Helper()
	reg := startRefRegistry(t, kind, nil)
	l, fx := e2eFixture(t, fixtures.Options{Platforms: e2ePlatforms()})
	e2eCopy(t, e2eRef(t, "docker://"+reg.host+"/"+repo+":v1"), fx, nil)
	return reg, l
}
