package tests

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// TestReferrersRegistryToRegistry copies an image with --referrers between every pair of the
// two registry kinds: every artifact (the SBOM's signature too) arrives byte for byte and is
// listed by the destination's referrers API or tag-schema index; a second copy writes
// nothing.
func TestReferrersRegistryToRegistry(t *testing.T) {
	t.Parallel()
	for _, from := range refRegistryKinds {
		for _, to := range refRegistryKinds {
			t.Run(from+"-to-"+to, func(t *testing.T) {
				t.Parallel()
				s := newRefScenario(t, from)
				dst := startRefRegistry(t, to, nil)
				src := e2eRef(t, "docker://"+s.src.host+"/"+s.repo+":v1")
				dest := e2eRef(t, "docker://"+dst.host+"/mirror/signed:v1")
				res := e2eCopy(t, dest, src, &copier.Options{Referrers: true})
				if len(res.Related) != 4 || len(res.LeftOut) != 0 {
					t.Fatalf("related %+v, left out %v; want the 4 artifacts", res.Related, res.LeftOut)
				}
				s.checkArrived(t, dst.host, "mirror/signed")

				dst.resetWrites()
				res = e2eCopy(t, dest, src, &copier.Options{Referrers: true})
				if w := dst.writeRequests(); len(w) != 0 || res.BlobsCopied != 0 {
					t.Errorf("second copy wrote %v (%d blobs copied), want nothing", w, res.BlobsCopied)
				}
				for _, r := range res.Related {
					if !r.Present {
						t.Errorf("second copy: %s not reported present", r.Digest)
					}
				}
			})
		}
	}
}

// checkArrived checks that every artifact of s is in repo at host, byte for byte, and listed
// as a referrer of its subject.
func (s *refScenario) checkArrived(t *testing.T, host, repo string) {
	t.Helper()
	for _, a := range s.artifacts {
		if got := getManifestRaw(t, host, repo, a.desc.Digest.String()); !bytes.Equal(got, a.body) {
			t.Errorf("%s: manifest differs at the destination", a.name)
		}
	}
	for _, subject := range []digest.Digest{s.imageDesc.Digest, s.artifacts[1].desc.Digest} {
		got := rawReferrers(t, host, repo, subject)
		if want := s.wantReferrers(subject, nil); !slices.Equal(got, want) {
			t.Errorf("referrers of %s at the destination: %v, want %v", subject, got, want)
		}
	}
}

// TestReferrersThroughLayout copies an image with its referrers and its cosign signature tag
// from a registry into an OCI layout and an oci-archive, and from there into a new registry:
// the layout lists them in referrers indexes (index.json entries named sha256-<hex> and
// annotated with the subject) and names the tag, the image stays the layout's only image,
// and every artifact and the tag arrive with their digests.
func TestReferrersThroughLayout(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"oci", "oci-archive"} {
		for _, regKind := range refRegistryKinds {
			t.Run(kind+"-"+regKind, func(t *testing.T) {
				t.Parallel()
				s := newRefScenario(t, regKind)
				src := e2eRef(t, "docker://"+s.src.host+"/"+s.repo+":v1")
				p := filepath.Join(t.TempDir(), "signed")
				if kind == "oci-archive" {
					p += ".tar"
				}
				local := e2eRef(t, kind+":"+p)
				opts := &copier.Options{Referrers: true, DigestTags: true}
				if res := e2eCopy(t, local, src, opts); len(res.Related) != 5 {
					t.Fatalf("to %s: related %+v, want the 4 artifacts and the tag", kind, res.Related)
				}
				if kind == "oci" {
					s.checkLayoutIndex(t, p)
				}
				dst := startRefRegistry(t, regKind, nil)
				res := e2eCopy(t, e2eRef(t, "docker://"+dst.host+"/restored/signed:v1"), local, opts)
				if len(res.Related) != 5 || res.ManifestDigest != s.imageDesc.Digest {
					t.Fatalf("from %s: digest %s, related %+v; want %s, the 4 artifacts and the tag", kind, res.ManifestDigest, res.Related, s.imageDesc.Digest)
				}
				s.checkArrived(t, dst.host, "restored/signed")
				if got := getManifestRaw(t, dst.host, "restored/signed", s.sigTag); !bytes.Equal(got, s.sigTagBody) {
					t.Errorf("signature tag %s differs after the round trip", s.sigTag)
				}
			})
		}
	}
}

// checkLayoutIndex checks the referrers indexes in the index.json of the layout at p.
func (s *refScenario) checkLayoutIndex(t *testing.T, p string) {
	t.Helper()
	idx, err := layout.ReadIndex(os.DirFS(p), p)
	if err != nil {
		t.Fatal(err)
	}
	var images int
	for _, e := range idx.Manifests {
		if !layout.IsRelatedEntry(e) {
			images++
		}
		if !layout.IsReferrersIndex(e) {
			continue
		}
		subject := digest.Digest(e.Annotations[layout.AnnotationReferrerSubject])
		if e.Annotations[imgspecv1.AnnotationRefName] != manifest.FallbackTag(subject) {
			t.Errorf("referrers index of %s named %q", subject, e.Annotations[imgspecv1.AnnotationRefName])
		}
		descs, err := layout.ListReferrersFS(os.DirFS(p), idx, subject, p)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range descs {
			got = append(got, d.Digest.String())
		}
		if want := s.wantReferrers(subject, nil); !slices.Equal(sortedStrings(got), want) {
			t.Errorf("layout referrers of %s: %v, want %v", subject, got, want)
		}
	}
	if images != 1 || len(idx.Manifests) != 4 {
		t.Errorf("index.json has %d entries, %d of them images; want the image, its signature tag and 2 referrers indexes", len(idx.Manifests), images)
	}
}

// TestReferrersConcurrentFallbackWriters runs two copies that add different referrers of one
// image to a registry without the referrers API (distribution ignores If-Match) and forces the
// race of the tag-schema index: both read it before either writes, and both writes land before
// either copy gets an answer, so the second overwrites the first. Both referrers must survive.
func TestReferrersConcurrentFallbackWriters(t *testing.T) {
	t.Parallel()
	s := newRefScenario(t, "ggcr")
	const repo = "mirror/signed"
	race := &putRace{path: "/v2/" + repo + "/manifests/" + manifest.FallbackTag(s.imageDesc.Digest)}
	dst := startRefRegistry(t, "distribution", race.wrap)
	src := e2eRef(t, "docker://"+s.src.host+"/"+s.repo+":v1")
	dest := e2eRef(t, "docker://"+dst.host+"/"+repo+":v1")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, typ := range []string{refTypeSig, refTypeAtt} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = copier.Image(context.Background(), dest, src, &copier.Options{Referrers: true, ReferrersTypes: []string{typ}})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !race.raced() {
		t.Fatal("the two writers did not race; the test proves nothing")
	}
	got := rawReferrers(t, dst.host, repo, s.imageDesc.Digest)
	want := s.wantReferrers(s.imageDesc.Digest, func(a refArtifact) bool { return a.artType != refTypeSBOM })
	if !slices.Equal(got, want) {
		t.Errorf("referrers index after two concurrent writers: %v, want %v", got, want)
	}
}

// putRace holds the first PUT to path until a second one arrives, then performs both, in
// order, before answering either: the second writer read the old index, so it overwrites the
// first writer's entry, and the first writer only learns of it by reading the index again.
type putRace struct {
	path string
	mu   sync.Mutex
	held []heldPut
	done bool
}

type heldPut struct {
	req  *http.Request
	resp chan *httptest.ResponseRecorder
}

func (p *putRace) raced() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *putRace) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.mu.Lock()
		if req.Method != http.MethodPut || req.URL.Path != p.path || p.done {
			p.mu.Unlock()
			next.ServeHTTP(w, req)
			return
		}
		h := heldPut{req: req, resp: make(chan *httptest.ResponseRecorder, 1)}
		p.held = append(p.held, h)
		if len(p.held) == 2 {
			p.done = true
			for _, hp := range p.held {
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, hp.req)
				hp.resp <- rec
			}
		}
		p.mu.Unlock()
		select {
		case rec := <-h.resp:
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		case <-time.After(20 * time.Second):
			http.Error(w, "no concurrent writer arrived", http.StatusServiceUnavailable)
		}
	})
}

// TestReferrersTypeFilter copies only the referrers of the selected artifact types, judged
// by each artifact's own manifest: go-containerregistry's registry lists them all with
// artifactType application/vnd.oci.empty.v1+json (their config's type). A signature of an
// SBOM that is left out is left out too.
func TestReferrersTypeFilter(t *testing.T) {
	t.Parallel()
	s := newRefScenario(t, "ggcr")
	cases := []struct {
		name  string
		types []string
		want  []string // artifact names
	}{
		{"signatures", []string{refTypeSig}, []string{"sig"}},
		{"sboms", []string{refTypeSBOM}, []string{"sbom"}},
		{"sboms and signatures", []string{refTypeSBOM, refTypeSig}, []string{"sig", "sbom", "sbom-sig"}},
		{"unknown type", []string{"application/x-none"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := startRefRegistry(t, "distribution", nil)
			res := e2eCopy(t, e2eRef(t, "docker://"+dst.host+"/f/signed:v1"), e2eRef(t, "docker://"+s.src.host+"/"+s.repo+":v1"),
				&copier.Options{Referrers: true, ReferrersTypes: tc.types})
			var got []string
			for _, r := range res.Related {
				got = append(got, r.Digest.String())
			}
			var want []string
			for _, a := range s.artifacts {
				if slices.Contains(tc.want, a.name) {
					want = append(want, a.desc.Digest.String())
				}
			}
			if !slices.Equal(sortedStrings(got), sortedStrings(want)) {
				t.Errorf("copied %v, want %v (%v)", got, want, tc.want)
			}
			all := append(rawReferrers(t, dst.host, "f/signed", s.imageDesc.Digest), rawReferrers(t, dst.host, "f/signed", s.artifacts[1].desc.Digest)...)
			if !slices.Equal(sortedStrings(all), sortedStrings(want)) {
				t.Errorf("destination lists %v, want %v", all, want)
			}
		})
	}
}

// TestReferrersLeftOut copies with Referrers into destinations that cannot hold artifacts,
// with a conversion that changes the image's digest, and from a source whose referrers index
// lists a manifest it no longer has: the image is copied, and the result (and a warning)
// names what was left out.
func TestReferrersLeftOut(t *testing.T) {
	t.Parallel()
	s := newRefScenario(t, "distribution")
	// A stale entry: a referrer deleted without updating the index that lists it.
	stale := s.wantReferrers(s.imageDesc.Digest, nil)
	gone := pushArtifact(t, s.src, s.repo, "deleted", s.imageDesc, refTypeSig).desc.Digest
	regDo(t, http.MethodDelete, "http://"+s.src.host+"/v2/"+s.repo+"/manifests/"+gone.String(), nil, nil, http.StatusAccepted)
	cases := []struct {
		name    string
		dest    func(t *testing.T) types.ImageReference
		opts    copier.Options
		leftOut []string // each must be named in one of the lines
		related int
		lines   int
	}{
		{"docker-archive", func(t *testing.T) types.ImageReference {
			return e2eLocation(t, "docker-archive", t.TempDir(), "", "left")
		},
			copier.Options{}, stale, 0, 1},
		{"dir", func(t *testing.T) types.ImageReference { return e2eLocation(t, "dir", t.TempDir(), "", "left") },
			copier.Options{}, stale, 0, 1},
		{"converted", func(t *testing.T) types.ImageReference { return e2eLocation(t, "oci", t.TempDir(), "", "left") },
			copier.Options{ForceManifestMIMEType: manifest.DockerV2Schema2MediaType}, stale, 0, 1},
		{"stale index entry", func(t *testing.T) types.ImageReference { return e2eLocation(t, "oci", t.TempDir(), "", "left") },
			copier.Options{}, []string{gone.String()}, 4, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.Referrers = true
			res := e2eCopy(t, tc.dest(t), e2eRef(t, "docker://"+s.src.host+"/"+s.repo+":v1"), &opts)
			if len(res.LeftOut) != tc.lines || len(res.Related) != tc.related {
				t.Fatalf("left out %q, %d related; want %d line(s), %d related", res.LeftOut, len(res.Related), tc.lines, tc.related)
			}
			all := strings.Join(res.LeftOut, "\n")
			for _, d := range tc.leftOut {
				if !strings.Contains(all, d) {
					t.Errorf("left out %q does not name %s", res.LeftOut, d)
				}
			}
		})
	}
}

// TestReferrersOfInstances copies the referrers of a multi-platform index and of one of its
// instances, all platforms or one.
func TestReferrersOfInstances(t *testing.T) {
	t.Parallel()
	const repo = "app/multi"
	src, l := multiPlatformSource(t, "ggcr", repo)
	top := imgspecv1.Descriptor{MediaType: l.ManifestMIMEType, Digest: l.ManifestDigest, Size: int64(len(l.Manifest))}
	inst := l.Images[0] // the running platform's image
	instDesc := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: inst.ManifestDigest, Size: int64(len(inst.Manifest))}
	onIndex := pushArtifact(t, src, repo, "index-sig", top, refTypeSig)
	onInst := pushArtifact(t, src, repo, "instance-sbom", instDesc, refTypeSBOM)
	for _, tc := range []struct {
		name      string
		multiArch copier.MultiArch
		platforms []types.Platform
		want      []refArtifact
		// leftOut must all be in the one line saying why the index's referrers were left out:
		// the reason, and the artifact's type from its manifest (ggcr's registry lists
		// another).
		leftOut []string
	}{
		{"all platforms", copier.MultiArchAll, nil, []refArtifact{onIndex, onInst}, nil},
		{"this platform", copier.MultiArchSystem, nil, []refArtifact{onInst}, nil},
		{"index of one platform", copier.MultiArchAll, []types.Platform{{OS: inst.Platform.OS, Architecture: inst.Platform.Architecture}},
			[]refArtifact{onInst}, []string{"--platform", onIndex.desc.Digest.String(), "(" + refTypeSig + ")"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := startRefRegistry(t, "distribution", nil)
			res := e2eCopy(t, e2eRef(t, "docker://"+dst.host+"/m/multi:v1"), e2eRef(t, "docker://"+src.host+"/"+repo+":v1"),
				&copier.Options{Referrers: true, MultiArch: tc.multiArch, Platforms: tc.platforms})
			if len(res.Related) != len(tc.want) {
				t.Errorf("related %+v, want %d", res.Related, len(tc.want))
			}
			if len(res.LeftOut) != min(len(tc.leftOut), 1) {
				t.Errorf("left out %q, want %d line(s)", res.LeftOut, min(len(tc.leftOut), 1))
			}
			for _, w := range tc.leftOut {
				if len(res.LeftOut) > 0 && !strings.Contains(res.LeftOut[0], w) {
					t.Errorf("left out %q does not say %q", res.LeftOut[0], w)
				}
			}
			for _, a := range tc.want {
				if got := rawReferrers(t, dst.host, "m/multi", a.subject); !slices.Equal(got, []string{a.desc.Digest.String()}) {
					t.Errorf("referrers of %s: %v, want %s (%s)", a.subject, got, a.desc.Digest, a.name)
				}
			}
		})
	}
}

// TestDigestTags copies cosign's tags of a multi-platform image, of one of its instances and
// of a tagged SBOM (its own signature tag) byte for byte, and leaves other images' tags alone.
func TestDigestTags(t *testing.T) {
	t.Parallel()
	const repo = "app/cosigned"
	src, l := multiPlatformSource(t, "distribution", repo)
	tags := map[string][]byte{}
	push := func(signed digest.Digest, suffix, layerType string) digest.Digest {
		tag := manifest.DigestTagPrefix(signed) + suffix
		tags[tag] = cosignSignature(t, src.host, repo, signed, layerType)
		return pushManifest(t, src.host, repo, tag, imgspecv1.MediaTypeImageManifest, tags[tag]).Digest
	}
	push(l.ManifestDigest, "sig", "application/vnd.dev.cosign.simplesigning.v1+json")
	push(l.ManifestDigest, "att", "application/vnd.dsse.envelope.v1+json")
	sbom := push(l.ManifestDigest, "sbom", "text/spdx+json")
	push(sbom, "sig", "application/vnd.dev.cosign.simplesigning.v1+json")
	push(l.Images[1].ManifestDigest, "sig", "application/vnd.dev.cosign.simplesigning.v1+json")
	other := digest.FromString("another image")
	otherTag := manifest.DigestTagPrefix(other) + "sig"
	pushManifest(t, src.host, repo, otherTag, imgspecv1.MediaTypeImageManifest, cosignSignature(t, src.host, repo, other, "application/vnd.dev.cosign.simplesigning.v1+json"))

	dst := startRefRegistry(t, "ggcr", nil)
	res := e2eCopy(t, e2eRef(t, "docker://"+dst.host+"/mirror/cosigned:v1"), e2eRef(t, "docker://"+src.host+"/"+repo+":v1"), &copier.Options{DigestTags: true})
	if len(res.Related) != len(tags) {
		t.Errorf("copied %d digest tags (%+v), want %d", len(res.Related), res.Related, len(tags))
	}
	for tag, want := range tags {
		if got := getManifestRaw(t, dst.host, "mirror/cosigned", tag); !bytes.Equal(got, want) {
			t.Errorf("tag %s differs at the destination", tag)
		}
	}
	if resp, _ := regDo(t, http.MethodGet, "http://"+dst.host+"/v2/mirror/cosigned/manifests/"+otherTag, nil, nil, 0); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another image's tag %s was copied (status %d)", otherTag, resp.StatusCode)
	}
	dst.resetWrites()
	if res := e2eCopy(t, e2eRef(t, "docker://"+dst.host+"/mirror/cosigned:v1"), e2eRef(t, "docker://"+src.host+"/"+repo+":v1"), &copier.Options{DigestTags: true}); res.BlobsCopied != 0 {
		t.Errorf("second copy copied %d blobs", res.BlobsCopied)
	}
	if w := dst.writeRequests(); len(w) != 0 {
		t.Errorf("second copy wrote %v, want nothing", w)
	}
}

// TestArtifactAsImage copies one artifact (a manifest with a subject) by digest, as the image,
// to every transport: each destination's PutManifest accepts it and keeps its digest, except
// a docker-archive, which `docker load` reads and which refuses it as a usage error; a
// registry and a layout also record it as a referrer of its subject.
func TestArtifactAsImage(t *testing.T) {
	t.Parallel()
	s := newRefScenario(t, "distribution")
	art := s.artifacts[1]
	src := e2eRef(t, "docker://"+s.src.host+"/"+s.repo+"@"+art.desc.Digest.String())
	for _, kind := range e2eKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			reg := startRefRegistry(t, "distribution", nil)
			base := t.TempDir()
			dest := e2eLocation(t, kind, base, reg.host, "art")
			if kind == "docker-archive" {
				if _, err := copier.Image(context.Background(), dest, src, nil); types.Classify(err) != types.ClassUsage {
					t.Fatalf("copying an artifact to a docker-archive: %v; want a usage error", err)
				}
				return
			}
			if res := e2eCopy(t, dest, src, nil); res.ManifestDigest != art.desc.Digest || res.DigestChanged {
				t.Fatalf("wrote %s (changed %v), want %s", res.ManifestDigest, res.DigestChanged, art.desc.Digest)
			}
			var got []string
			switch kind {
			case "registry":
				got = rawReferrers(t, reg.host, "e2e/art", art.subject)
			case "oci":
				idx, err := layout.ReadIndex(os.DirFS(filepath.Join(base, "art")), "layout")
				if err != nil {
					t.Fatal(err)
				}
				descs, err := layout.ListReferrersFS(os.DirFS(filepath.Join(base, "art")), idx, art.subject, "layout")
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range descs {
					got = append(got, d.Digest.String())
				}
			default:
				return
			}
			if !slices.Equal(got, []string{art.desc.Digest.String()}) {
				t.Errorf("referrers of %s: %v, want the artifact", art.subject, got)
			}
		})
	}
}
