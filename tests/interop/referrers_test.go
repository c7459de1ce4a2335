package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	godigest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// Artifact types regctl pushes in TestReferrersWithPeers.
const (
	typeSig  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	typeSBOM = "application/spdx+json"
	typeAtt  = "application/vnd.in-toto+json"
)

// TestReferrersWithPeers has regctl attach a signature, an SBOM, an attestation and a
// signature of the SBOM to an image in distribution 2.8 (no referrers API: regctl writes the
// sha256-<hex> index), pushes a cosign-format signature tag next to it, and copies the image
// with --referrers --digest-tags to distribution/v3, to go-containerregistry's registry (with
// the referrers API) and to an OCI layout and from it to another registry. Everywhere, regctl
// lists the same referrers as at the source (by type, through the referrers API or the tag
// schema, in a registry or an ocidir), the API lists them too, and the signature tag is
// byte for byte the one at the source.
func TestReferrersWithPeers(t *testing.T) {
	tmp := setup(t, "skopeo", "regctl", "crane", "docker-registry")
	fx := getFixture(t)
	src := startRegistry(t) + "/signed/app"
	skopeo(t, "copy", "oci:"+fx.dir+":v1", "docker://"+src+":v1")
	for _, a := range []struct{ typ, file string }{{typeSig, "sig"}, {typeSBOM, "sbom"}, {typeAtt, "att"}} {
		regctlAttach(t, tmp, src+":v1", a.typ, a.file)
	}
	sbom := regctlList(t, src+":v1", typeSBOM)
	if len(sbom) != 1 {
		t.Fatalf("regctl lists SBOMs %v at the source, want one", sbom)
	}
	regctlAttach(t, tmp, src+"@"+sbom[0], typeSig, "sbom-sig")
	sigTag := strings.Replace(fx.digests["v1"], ":", "-", 1) + ".sig"
	pushCosignTag(t, tmp, src+":"+sigTag, fx.digests["v1"])
	want := sourceReferrers(t, src, sbom[0])
	var listed struct {
		Referrers []struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(imgcopy(t, "referrers", "--tls-verify=false", "--format", "json", "docker://"+src+":v1")), &listed); err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, r := range listed.Referrers {
		ours = append(ours, r.Digest)
	}
	if slices.Sort(ours); !slices.Equal(ours, want.all) {
		t.Errorf("imgcopy referrers lists %v at the source, regctl %v", ours, want.all)
	}

	v3 := testregistry.Start(t, testregistry.Options{}).Host
	ggcr := startGGCR(t)
	layout := filepath.Join(tmp, "layout")
	dests := []struct{ name, ref, regctlRef string }{
		{"distribution/v3", "docker://" + v3 + "/mirror/app:v1", v3 + "/mirror/app:v1"},
		{"go-containerregistry", "docker://" + ggcr + "/mirror/app:v1", ggcr + "/mirror/app:v1"},
		{"OCI layout", "oci:" + layout + ":v1", "ocidir://" + layout + ":v1"},
	}
	for _, host := range []string{v3, ggcr} {
		regctlPlainHTTP(t, host)
	}
	for _, d := range dests {
		if got := imgcopyCopy(t, "docker://"+src+":v1", d.ref, "--referrers", "--digest-tags"); got != fx.digests["v1"] {
			t.Errorf("%s: imgcopy wrote %s, want %s", d.name, got, fx.digests["v1"])
		}
		checkPeerReferrers(t, d.name, d.regctlRef, want, d.name == "go-containerregistry")
	}
	back := v3 + "/restored/app"
	imgcopyCopy(t, "oci:"+layout+":v1", "docker://"+back+":v1", "--referrers", "--digest-tags")
	checkPeerReferrers(t, "layout to registry", back+":v1", want, false)

	for _, ref := range []string{v3 + "/mirror/app", ggcr + "/mirror/app", back} {
		if got, wantSig := crane(t, "manifest", ref+":"+sigTag), crane(t, "manifest", src+":"+sigTag); got != wantSig {
			t.Errorf("%s:%s differs from the source's cosign signature:\n%s\nwant\n%s", ref, sigTag, got, wantSig)
		}
	}
	apiList := httpReferrers(t, ggcr, "mirror/app", fx.digests["v1"])
	if !slices.Equal(apiList, want.all) {
		t.Errorf("go-containerregistry's referrers API lists %v, want %v", apiList, want.all)
	}
}

// peerReferrers are the digests regctl lists at the source, sorted: by artifact type, all of
// the image's, and the SBOM's.
type peerReferrers struct {
	byType map[string][]string
	all    []string
	sbom   string
	onSBOM []string
}

func sourceReferrers(t *testing.T, src, sbom string) peerReferrers {
	t.Helper()
	p := peerReferrers{byType: map[string][]string{}, sbom: sbom, all: regctlList(t, src+":v1", "")}
	for _, typ := range []string{typeSig, typeSBOM, typeAtt} {
		p.byType[typ] = regctlList(t, src+":v1", typ)
	}
	p.onSBOM = regctlList(t, src+"@"+sbom, "")
	if len(p.all) != 3 || len(p.onSBOM) != 1 {
		t.Fatalf("regctl lists %v and %v on the SBOM at the source, want 3 and 1", p.all, p.onSBOM)
	}
	return p
}

// checkPeerReferrers compares what regctl lists at ref with the source's. go-containerregistry's
// referrers API reports each artifact's config media type as its artifactType, so regctl's
// type filter finds nothing there (the registry's fault): only the unfiltered list is compared.
func checkPeerReferrers(t *testing.T, name, ref string, want peerReferrers, summaryBroken bool) {
	t.Helper()
	if got := regctlList(t, ref, ""); !slices.Equal(got, want.all) {
		t.Errorf("%s: regctl lists %v, want %v", name, got, want.all)
	}
	if !summaryBroken {
		for typ, w := range want.byType {
			if got := regctlList(t, ref, typ); !slices.Equal(got, w) {
				t.Errorf("%s: regctl lists %v of type %s, want %v", name, got, typ, w)
			}
		}
	}
	repo := ref[:strings.LastIndexAny(ref, ":@")]
	if got := regctlList(t, repo+"@"+want.sbom, ""); !slices.Equal(got, want.onSBOM) {
		t.Errorf("%s: regctl lists %v on the SBOM, want %v", name, got, want.onSBOM)
	}
}

// regctlAttach pushes an artifact of type typ referring to subject with regctl.
func regctlAttach(t *testing.T, dir, subject, typ, name string) {
	t.Helper()
	file := filepath.Join(dir, name+".json")
	if err := os.WriteFile(file, []byte(`{"artifact":"`+name+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	regctl(t, "artifact", "put", "--subject", subject, "--artifact-type", typ, "--file", file,
		"--file-media-type", "application/vnd.example."+name+"+json", "--annotation", "org.example.name="+name)
}

// regctlList returns the digests regctl lists as referrers of ref (of type typ when set), sorted.
func regctlList(t *testing.T, ref, typ string) []string {
	t.Helper()
	args := []string{"artifact", "list", ref, "--format", "{{range .Descriptors}}{{println .Digest}}{{end}}"}
	if typ != "" {
		args = append(args, "--filter-artifact-type", typ)
	}
	out := strings.Fields(regctl(t, args...))
	slices.Sort(out)
	return out
}

// pushCosignTag pushes, with regctl, a manifest in cosign's signature format (an OCI image
// whose one layer is the simple-signing payload, the signature in an annotation) as ref.
func pushCosignTag(t *testing.T, dir, ref, signed string) {
	t.Helper()
	repo := ref[:strings.LastIndex(ref, ":")]
	put := func(name string, data []byte) imgspecv1.Descriptor {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d := strings.TrimSpace(runStdin(t, p, "regctl", "blob", "put", repo))
		return imgspecv1.Descriptor{Digest: digestOf(t, d), Size: int64(len(data))}
	}
	payload := []byte(`{"critical":{"identity":{"docker-reference":"` + repo + `"},"image":{"docker-manifest-digest":"` + signed +
		`"},"type":"cosign container image signature"},"optional":null}`)
	layer := put("payload.json", payload)
	layer.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	layer.Annotations = map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQDinteropnotarealsignature"}
	config := put("config.json", []byte(`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["`+
		layer.Digest.String()+`"]},"config":{}}`))
	config.MediaType = imgspecv1.MediaTypeImageConfig
	m, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": imgspecv1.MediaTypeImageManifest, "config": config, "layers": []imgspecv1.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cosign-manifest.json")
	if err := os.WriteFile(p, m, 0o644); err != nil {
		t.Fatal(err)
	}
	runStdin(t, p, "regctl", "manifest", "put", "--content-type", imgspecv1.MediaTypeImageManifest, ref)
}

// startGGCR starts go-containerregistry's registry with the referrers API on 127.0.0.1.
func startGGCR(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// httpReferrers lists the referrers of subject through the registry's referrers API, sorted.
func httpReferrers(t *testing.T, host, repo, subject string) []string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/referrers/" + subject)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var idx imgspecv1.Index
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &idx) != nil {
		t.Fatalf("referrers API of %s: %d %s", host, resp.StatusCode, b)
	}
	var out []string
	for _, d := range idx.Manifests {
		out = append(out, d.Digest.String())
	}
	slices.Sort(out)
	return out
}

// runStdin runs a command with the file at stdin as its standard input, like run.
func runStdin(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	f, err := os.Open(stdin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "REGCTL_CONFIG="+regctlConfig(t))
	cmd.Stdin = f
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t.Logf("$ %s %s < %s", name, strings.Join(args, " "), filepath.Base(stdin))
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func digestOf(t *testing.T, s string) godigest.Digest {
	t.Helper()
	d, err := godigest.Parse(s)
	if err != nil {
		t.Fatalf("not a digest: %q", s)
	}
	return d
}
