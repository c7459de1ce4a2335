package tests

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/inspect"
)

// TestCLIReferrers copies a signed image with --referrers and --referrers-type through the
// binary, lists the result with `imgcopy referrers` (text and JSON, recursive), and checks
// the warning for a destination that cannot hold artifacts.
func TestCLIReferrers(t *testing.T) {
	t.Parallel()
	s := newRefScenario(t, "ggcr")
	dst := startRefRegistry(t, "distribution", nil)
	src := "docker://" + s.src.host + "/" + s.repo + ":v1"
	dest := "docker://" + dst.host + "/cli/signed:v1"
	res := mustCLI(t, "--referrers", "--referrers-type", refTypeSig, "--referrers-type", refTypeSBOM, src, dest)
	if !strings.Contains(res.stdout, "3 referrer(s) and digest tag(s) written") {
		t.Errorf("summary does not count the 3 referrers:\n%s", res.stdout)
	}

	out := mustCLI(t, "referrers", "--recursive", "--format", "json", dest)
	var list inspect.ReferrersList
	if err := json.Unmarshal([]byte(out.stdout), &list); err != nil {
		t.Fatalf("referrers --format json: %v\n%s", err, out.stdout)
	}
	if list.Subject != s.imageDesc.Digest || len(list.Referrers) != 2 {
		t.Fatalf("listed %+v, want the signature and the SBOM of %s", list, s.imageDesc.Digest)
	}
	sbom := list.Referrers[0] // sorted by artifactType: application/spdx+json first
	if sbom.Digest != s.artifacts[1].desc.Digest || sbom.ArtifactType != refTypeSBOM || len(sbom.Referrers) != 1 ||
		sbom.Referrers[0].Digest != s.artifacts[3].desc.Digest || sbom.Annotations["org.example.payload"] == "" {
		t.Errorf("SBOM entry %+v, want %s with its signature %s", sbom, s.artifacts[1].desc.Digest, s.artifacts[3].desc.Digest)
	}

	text := mustCLI(t, "referrers", "--artifact-type", refTypeSig, dest).stdout
	if !strings.Contains(text, s.artifacts[0].desc.Digest.String()) || strings.Contains(text, s.artifacts[1].desc.Digest.String()) {
		t.Errorf("referrers --artifact-type %s printed:\n%s", refTypeSig, text)
	}

	if r := cli(t, "--referrers-type", refTypeSig, src, dest); r.code != 2 || !strings.Contains(r.stderr, "--referrers-type needs --referrers") {
		t.Errorf("--referrers-type alone: exit %d, stderr %q", r.code, r.stderr)
	}
	archive := "docker-archive:" + filepath.Join(t.TempDir(), "a.tar") + ":cli/signed:v1"
	if r := mustCLI(t, "--referrers", src, archive); !strings.Contains(r.stderr, "cannot hold artifacts") {
		t.Errorf("copy to a docker-archive did not warn about the referrers left out:\n%s", r.stderr)
	}
}
