package manifest

import (
	"runtime"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/types"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// plat builds a platform from "os/arch[/variant]".
func plat(t testing.TB, s string) types.Platform {
	t.Helper()
	p, err := ParsePlatform(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNormalizePlatform(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"linux/x86_64":     "linux/amd64",
		"linux/x86-64":     "linux/amd64",
		"Linux/AMD64":      "linux/amd64",
		"linux/aarch64":    "linux/arm64/v8",
		"linux/arm64":      "linux/arm64/v8",
		"linux/arm64/8":    "linux/arm64/v8",
		"linux/armhf":      "linux/arm/v7",
		"linux/armel":      "linux/arm/v6",
		"linux/arm":        "linux/arm/v7",
		"linux/arm/6":      "linux/arm/v6",
		"linux/i386":       "linux/386",
		"linux/386":        "linux/386",
		"windows/amd64":    "windows/amd64",
		"linux/riscv64":    "linux/riscv64",
		"linux/amd64/v1":   "linux/amd64",
		"linux/amd64/v3":   "linux/amd64/v3",
		"freebsd/arm64/v9": "freebsd/arm64/v9",
	}
	for in, want := range cases {
		if got := FormatPlatform(NormalizePlatform(plat(t, in))); got != want {
			t.Errorf("NormalizePlatform(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestMatchesPlatform(t *testing.T) {
	t.Parallel()
	win := func(v string) types.Platform {
		return types.Platform{OS: "windows", Architecture: "amd64", OSVersion: v}
	}
	cases := []struct {
		name       string
		want, have types.Platform
		match      bool
	}{
		{"same", plat(t, "linux/amd64"), plat(t, "linux/amd64"), true},
		{"alias", plat(t, "linux/x86_64"), plat(t, "linux/amd64"), true},
		{"other arch", plat(t, "linux/amd64"), plat(t, "linux/arm64"), false},
		{"other os", plat(t, "linux/amd64"), plat(t, "windows/amd64"), false},
		{"arm64 default variant", plat(t, "linux/arm64/v8"), plat(t, "linux/arm64"), true},
		{"aarch64", plat(t, "linux/aarch64"), plat(t, "linux/arm64/v8"), true},
		{"arm variant differs", plat(t, "linux/arm/v7"), plat(t, "linux/arm/v6"), false},
		{"no variant wanted", plat(t, "linux/arm"), plat(t, "linux/arm/v6"), true},
		{"armhf", plat(t, "linux/armhf"), plat(t, "linux/arm/v7"), true},
		{"windows any version", win(""), win("10.0.17763.1234"), true},
		{"windows same build", win("10.0.17763"), win("10.0.17763.1234"), true},
		{"windows exact", win("10.0.17763.1234"), win("10.0.17763.1234"), true},
		{"windows other build", win("10.0.20348"), win("10.0.17763.1234"), false},
		{"windows prefix is not a component", win("10.0.1776"), win("10.0.17763.1234"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MatchesPlatform(tc.want, tc.have); got != tc.match {
				t.Errorf("MatchesPlatform = %v, want %v", got, tc.match)
			}
		})
	}
}

func TestChooseInstance(t *testing.T) {
	t.Parallel()
	list := mustIndexFromBlob(t, "docker-list.json")
	got, err := ChooseInstance(list, plat(t, "linux/x86_64"))
	if err != nil || got.Digest != "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270" {
		t.Fatalf("ChooseInstance(amd64) = %+v, %v", got, err)
	}
	_, err = ChooseInstance(list, plat(t, "linux/s390x"))
	if !errors.Is(err, types.ErrManifestNotFound) || !strings.Contains(err.Error(), "linux/ppc64le, linux/amd64") {
		t.Fatalf("ChooseInstance(s390x) = %v", err)
	}
	nested := mustIndexFromBlob(t, "oci-index-nested.json")
	if _, err := ChooseInstance(nested, plat(t, "linux/amd64")); !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("ChooseInstance picked a nested index: %v", err)
	}
}

func TestChooseInstanceArmFallback(t *testing.T) {
	t.Parallel()
	var inst []IndexInstance
	for _, v := range []string{"v5", "v6", "v8"} {
		inst = append(inst, IndexInstance{
			BlobInfo: types.BlobInfo{Digest: digest.FromString(v), Size: 1, MediaType: imgspecv1.MediaTypeImageManifest},
			Platform: &imgspecv1.Platform{OS: "linux", Architecture: "arm", Variant: v},
		})
	}
	idx, err := UpdateIndex(&OCI1Index{}, IndexUpdateOptions{Instances: inst})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{"linux/arm/v7": "v6", "linux/arm/v6": "v6", "linux/armhf": "v6", "linux/arm/v8": "v8", "linux/armel": "v6"}
	for want, variant := range cases {
		got, err := ChooseInstance(idx, plat(t, want))
		if err != nil || got.Digest != digest.FromString(variant) {
			t.Errorf("ChooseInstance(%s) = %s, %v; want %s", want, got.Platform.Variant, err, variant)
		}
	}
}

func TestSystemPlatform(t *testing.T) {
	t.Parallel()
	got := SystemPlatform(nil)
	if got.OS != runtime.GOOS || got.Architecture != NormalizePlatform(types.Platform{Architecture: runtime.GOARCH}).Architecture {
		t.Errorf("SystemPlatform(nil) = %+v", got)
	}
	got = SystemPlatform(&types.SystemContext{OSChoice: "linux", ArchitectureChoice: "aarch64"})
	if FormatPlatform(got) != "linux/arm64/v8" {
		t.Errorf("override = %s", FormatPlatform(got))
	}
	got = SystemPlatform(&types.SystemContext{ArchitectureChoice: "arm", VariantChoice: "v6"})
	if got.Architecture != "arm" || got.Variant != "v6" {
		t.Errorf("variant override = %+v", got)
	}
}

func TestParsePlatform(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "linux/arm/v7/x", "linux//v7"} {
		if p, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) = %+v", bad, p)
		}
	}
	if p := plat(t, "linux/arm/v7"); p.OS != "linux" || p.Architecture != "arm" || p.Variant != "v7" {
		t.Errorf("ParsePlatform = %+v", p)
	}
}

// TestChooseInstanceSkipsAttestations: buildx lists an attestation manifest (platform
// unknown/unknown, vnd.docker.reference.type=attestation-manifest) for each image; it is never
// the image of a platform, even one asked for as unknown/unknown, and never offered as one.
func TestChooseInstanceSkipsAttestations(t *testing.T) {
	t.Parallel()
	unknown := &imgspecv1.Platform{OS: "unknown", Architecture: "unknown"}
	att := func(name, of string) IndexInstance {
		return IndexInstance{BlobInfo: types.BlobInfo{Digest: digest.FromString(name), Size: 1,
			MediaType: imgspecv1.MediaTypeImageManifest, Annotations: map[string]string{
				"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": digest.FromString(of).String()}},
			Platform: unknown}
	}
	img := func(name, arch string) IndexInstance {
		return IndexInstance{BlobInfo: types.BlobInfo{Digest: digest.FromString(name), Size: 1, MediaType: imgspecv1.MediaTypeImageManifest},
			Platform: &imgspecv1.Platform{OS: "linux", Architecture: arch}}
	}
	idx, err := UpdateIndex(&OCI1Index{}, IndexUpdateOptions{Instances: []IndexInstance{
		att("att-arm", "arm"), att("att-amd", "amd"), img("arm", "arm64"), img("amd", "amd64")}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ want, digest string }{
		{"linux/amd64", "amd"},
		{"linux/arm64", "arm"},
		{"unknown/unknown", ""},
	}
	for _, tc := range cases {
		got, err := ChooseInstance(idx, plat(t, tc.want))
		if tc.digest == "" {
			if !errors.Is(err, types.ErrManifestNotFound) {
				t.Errorf("ChooseInstance(%s) = %s, %v; want ErrManifestNotFound", tc.want, got.Digest, err)
			} else if !strings.HasSuffix(err.Error(), "available: linux/arm64, linux/amd64: manifest not found") {
				t.Errorf("ChooseInstance(%s) error lists attestations as platforms: %v", tc.want, err)
			}
			continue
		}
		if err != nil || got.Digest != digest.FromString(tc.digest) {
			t.Errorf("ChooseInstance(%s) = %s, %v; want the %s image", tc.want, got.Digest, err, tc.digest)
		}
	}
	onlyAtt, err := UpdateIndex(&OCI1Index{}, IndexUpdateOptions{Instances: []IndexInstance{att("att-arm", "arm")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ChooseInstance(onlyAtt, plat(t, "linux/amd64")); !errors.Is(err, types.ErrManifestNotFound) || !strings.Contains(err.Error(), "lists only artifacts") {
		t.Errorf("ChooseInstance in an index of artifacts: %v; want it to say the index lists only artifacts", err)
	}
	if Runnable(att("a", "b")) || !Runnable(img("x", "amd64")) || Runnable(IndexInstance{Platform: unknown}) {
		t.Error("Runnable does not tell attestations and unknown/unknown from images")
	}
}
