package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// realReferrers are the artifacts of testdata/referrers (see its README): what oras, notation
// and cosign pushed for the fixture image, by manifest digest, with the artifactType each
// manifest gives itself.
var realReferrers = map[digest.Digest]string{
	"sha256:f1f9f254f721c1efbd4b48e63bc280e25fe8b104935abcda71de01e81a6d6c2b": "application/spdx+json",                           // oras attach
	"sha256:d250ef8da565d4b3de5d6b36e3cd7f6c33c9f411a243a4d25323a30adb3e1a30": "application/vnd.cncf.notary.signature",           // notation sign, of the SBOM
	"sha256:c0f9b573dc0a6b156ad7138ba534fde47607625b3671219aceed3c53f310319e": "application/vnd.cncf.notary.signature",           // notation sign
	"sha256:82a0686e4c2f9b684070e354fa0f4f48cf0723083eab5ed35035e4e05266cf1f": "application/vnd.dev.cosign.artifact.sig.v1+json", // cosign sign --registry-referrers-mode=oci-1-1
	"sha256:eca48cb1f37cc7d88b9255f6c5ed121a0950e3de9641be4576760a58bbd60595": "application/vnd.dev.sigstore.bundle.v0.3+json",   // cosign sign --new-bundle-format
	"sha256:f70c41283f5f9add49f404a732044195b052d776cd069c9ff10b46ddf9ce0963": "application/vnd.dev.sigstore.bundle.v0.3+json",   // cosign attest --new-bundle-format
}

// pushRealReferrers pushes the fixture image and the real tools' artifacts to repo:v1 of reg.
func pushRealReferrers(t *testing.T, reg *refRegistry, repo string) *fixtures.Layout {
	t.Helper()
	l, fx := e2eFixture(t, fixtures.Options{})
	e2eCopy(t, e2eRef(t, "docker://"+reg.host+"/"+repo+":v1"), fx, nil)
	const dir = "testdata/referrers"
	list, err := os.ReadFile(filepath.Join(dir, "manifests.txt"))
	if err != nil {
		t.Fatal(err)
	}
	manifests := map[string]bool{}
	for sc := bufio.NewScanner(bytes.NewReader(list)); sc.Scan(); {
		manifests[strings.TrimPrefix(sc.Text(), "sha256:")] = true
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs/sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if !manifests[b.Name()] {
			pushBlob(t, reg.host, repo, "application/octet-stream", readBlobFile(t, dir, "sha256:"+b.Name()))
		}
	}
	for sc := bufio.NewScanner(bytes.NewReader(list)); sc.Scan(); { // an SBOM before its signature
		d := digest.Digest(sc.Text())
		pushManifest(t, reg.host, repo, d.String(), imgspecv1.MediaTypeImageManifest, readBlobFile(t, dir, d.String()))
	}
	return l
}

func readBlobFile(t *testing.T, dir string, d string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs/sha256", strings.TrimPrefix(d, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReferrersRealTools carries what oras, notation and cosign attach to an image (captured
// from the real tools: notation's signatures have no artifactType and name their type in the
// config; go-containerregistry's registry lists each with its config's media type) from a
// registry with the referrers API to one without, through an OCI archive, and back: every
// artifact arrives byte for byte, and the tag-schema index lists each under the type its own
// manifest gives, with its annotations.
func TestReferrersRealTools(t *testing.T) {
	t.Parallel()
	src := startRefRegistry(t, "ggcr", nil)
	l := pushRealReferrers(t, src, "app/signed")
	opts := &copier.Options{Referrers: true}
	check := func(host, repo string) {
		t.Helper()
		for d := range realReferrers {
			if got := getManifestRaw(t, host, repo, d.String()); !bytes.Equal(got, readBlobFile(t, "testdata/referrers", d.String())) {
				t.Errorf("%s/%s: referrer %s differs", host, repo, d)
			}
		}
	}

	mid := startRefRegistry(t, "distribution", nil)
	res := e2eCopy(t, e2eRef(t, "docker://"+mid.host+"/m/signed:v1"), e2eRef(t, "docker://"+src.host+"/app/signed:v1"), opts)
	if len(res.Related) != len(realReferrers) {
		t.Fatalf("related %+v, want %d", res.Related, len(realReferrers))
	}
	check(mid.host, "m/signed")
	for _, subject := range []digest.Digest{l.ManifestDigest, "sha256:f1f9f254f721c1efbd4b48e63bc280e25fe8b104935abcda71de01e81a6d6c2b"} {
		var idx imgspecv1.Index
		if err := json.Unmarshal(getManifestRaw(t, mid.host, "m/signed", manifest.FallbackTag(subject)), &idx); err != nil {
			t.Fatal(err)
		}
		for _, e := range idx.Manifests {
			if want, ok := realReferrers[e.Digest]; !ok || e.ArtifactType != want {
				t.Errorf("the index of %s lists %s as %q, want %q", subject, e.Digest, e.ArtifactType, want)
			}
			if want := manifestAnnotations(t, e.Digest); len(want) != len(e.Annotations) {
				t.Errorf("the index of %s lists %s with annotations %v, want %v", subject, e.Digest, e.Annotations, want)
			}
		}
	}

	archive := e2eRef(t, "oci-archive:"+filepath.Join(t.TempDir(), "signed.tar"))
	e2eCopy(t, archive, e2eRef(t, "docker://"+mid.host+"/m/signed:v1"), opts)
	dst := startRefRegistry(t, "ggcr", nil)
	if res := e2eCopy(t, e2eRef(t, "docker://"+dst.host+"/back/signed:v1"), archive, opts); len(res.Related) != len(realReferrers) {
		t.Fatalf("from the archive: related %+v, want %d", res.Related, len(realReferrers))
	}
	check(dst.host, "back/signed")
	var want []string
	for d := range realReferrers {
		if d != "sha256:d250ef8da565d4b3de5d6b36e3cd7f6c33c9f411a243a4d25323a30adb3e1a30" { // the SBOM's signature
			want = append(want, d.String())
		}
	}
	if got := rawReferrers(t, dst.host, "back/signed", l.ManifestDigest); !slices.Equal(got, sortedStrings(want)) {
		t.Errorf("the registry lists %v as the image's referrers, want %v", got, sortedStrings(want))
	}
}

// manifestAnnotations returns the annotations of a captured manifest.
func manifestAnnotations(t *testing.T, d digest.Digest) map[string]string {
	t.Helper()
	var m imgspecv1.Manifest
	if err := json.Unmarshal(readBlobFile(t, "testdata/referrers", d.String()), &m); err != nil {
		t.Fatal(err)
	}
	return m.Annotations
}
