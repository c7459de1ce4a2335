package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// TestCLIMultiPlatform copies a two-platform layout with each --multi-arch/--platform choice
// and checks which manifest was written.
func TestCLIMultiPlatform(t *testing.T) {
	t.Parallel()
	l, err := fixtures.Build(fixtures.Options{Platforms: []string{"linux/amd64", "linux/arm64/v8"}})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "multi")
	if err := l.Write(src); err != nil {
		t.Fatal(err)
	}
	amd64, arm64 := l.Images[0].ManifestDigest, l.Images[1].ManifestDigest
	cases := []struct {
		name string
		args []string
		dest string // transport prefix; the path is added
		want digest.Digest
	}{
		{name: "default into a layout copies the index", dest: "oci", want: l.ManifestDigest},
		{name: "all into dir", args: []string{"--all"}, dest: "dir", want: l.ManifestDigest},
		{name: "system with override", args: []string{"--override-arch", "arm64", "--multi-arch", "system"}, dest: "dir", want: arm64},
		{name: "docker-archive defaults to the system platform", args: []string{"--override-arch", "amd64", "--override-os", "linux"}, dest: "docker-archive", want: amd64},
		{name: "platform selects one image", args: []string{"--platform", "linux/arm64", "--multi-arch", "system"}, dest: "oci", want: arm64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			digestFile := filepath.Join(tmp, "digest")
			dest := tc.dest + ":" + filepath.Join(tmp, "dest")
			if tc.dest != "dir" {
				dest += ":v1"
			}
			if tc.dest == "docker-archive" {
				dest = tc.dest + ":" + filepath.Join(tmp, "dest.tar") + ":multi:v1"
			}
			args := append([]string{"--quiet", "--digestfile", digestFile}, tc.args...)
			mustCLI(t, append(args, "oci:"+src+":latest", dest)...)
			if got := readDigestFile(t, digestFile); got != tc.want {
				t.Errorf("wrote %s, want %s (index %s, amd64 %s, arm64 %s)", got, tc.want, l.ManifestDigest, amd64, arm64)
			}
		})
	}
	res := cli(t, "--quiet", "--platform", "windows/amd64", "--multi-arch", "system", "oci:"+src+":latest", "dir:"+filepath.Join(t.TempDir(), "none"))
	if res.code != 3 || !strings.Contains(res.stderr, "linux/arm64") {
		t.Errorf("missing platform: exit %d, stderr %q (want the available platforms listed)", res.code, res.stderr)
	}
	res = mustCLI(t, "--override-arch", "arm64", "inspect", "--format", "{{.Digest}} {{.Architecture}}", "oci:"+src+":latest")
	if want := l.ManifestDigest.String() + " arm64"; strings.TrimSpace(res.stdout) != want {
		t.Errorf("inspect with --override-arch printed %q, want %q", res.stdout, want)
	}
}

// TestCLIDockerTypesKeptInOCILayout checks the byte-exact rule: a Docker schema2 image copied
// into an OCI layout keeps its manifest bytes unless --format oci asks for a conversion.
func TestCLIDockerTypesKeptInOCILayout(t *testing.T) {
	t.Parallel()
	l, err := fixtures.Build(fixtures.Options{DockerMediaTypes: true})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "docker-types")
	if err := l.Write(src); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "--quiet", "oci:"+src+":latest", "oci:"+filepath.Join(tmp, "kept")+":latest")
	res := mustCLI(t, "inspect", "--raw", "oci:"+filepath.Join(tmp, "kept")+":latest")
	if !bytes.Equal([]byte(res.stdout), l.Manifest) {
		t.Errorf("manifest changed without --format:\n%s", res.stdout)
	}
	mustCLI(t, "--quiet", "--format", "oci", "oci:"+src+":latest", "oci:"+filepath.Join(tmp, "converted")+":latest")
	res = mustCLI(t, "inspect", "--raw", "oci:"+filepath.Join(tmp, "converted")+":latest")
	if !strings.Contains(res.stdout, "application/vnd.oci.image.manifest.v1+json") || strings.Contains(res.stdout, "docker") {
		t.Errorf("--format oci wrote:\n%s", res.stdout)
	}
	index, err := os.ReadFile(filepath.Join(tmp, "converted", "index.json"))
	if err != nil || !strings.Contains(string(index), "application/vnd.oci.image.manifest.v1+json") {
		t.Errorf("index.json of the converted layout: %s (%v)", index, err)
	}
}
