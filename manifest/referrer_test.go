package manifest

import (
	"encoding/json"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

func TestFallbackTag(t *testing.T) {
	t.Parallel()
	d256 := digest.FromString("x")
	d512 := digest.SHA512.FromString("x")
	cases := []struct {
		name string
		d    digest.Digest
		want string
	}{
		{"sha256", d256, "sha256-" + d256.Encoded()},
		{"sha512 is cut to 64 hex digits", d512, "sha512-" + d512.Encoded()[:64]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := FallbackTag(tc.d)
			if got != tc.want {
				t.Errorf("FallbackTag(%s) = %q, want %q", tc.d, got, tc.want)
			}
			if !IsFallbackTag(got) {
				t.Errorf("IsFallbackTag(%q) = false", got)
			}
			if strings.HasPrefix(got, DigestTagPrefix(tc.d)) {
				t.Errorf("the referrers tag %q matches the digest tag prefix %q", got, DigestTagPrefix(tc.d))
			}
		})
	}
}

func TestTagForms(t *testing.T) {
	t.Parallel()
	hex := digest.FromString("x").Encoded()
	cases := []struct {
		tag                 string
		fallback, digestTag bool
	}{
		{"sha256-" + hex, true, false},
		{"sha256-" + hex + ".sig", false, true},
		{"sha256-" + hex + ".att", false, true},
		{"sha256-" + hex + ".", false, false},
		{"sha256-" + hex[:63], false, false},
		{"sha256-" + hex[:10] + ".sig", false, false},
		{"sha256-" + strings.ToUpper(hex), false, false},
		{"sha512-" + hex, true, false}, // 64 hex digits: a sha512 digest cut to the tag schema's length
		{"md5-" + hex, false, false},
		{"latest", false, false},
		{"v1.2", false, false},
		{"sha256", false, false},
	}
	for _, tc := range cases {
		if got := IsFallbackTag(tc.tag); got != tc.fallback {
			t.Errorf("IsFallbackTag(%q) = %v, want %v", tc.tag, got, tc.fallback)
		}
		if got := IsDigestTag(tc.tag); got != tc.digestTag {
			t.Errorf("IsDigestTag(%q) = %v, want %v", tc.tag, got, tc.digestTag)
		}
	}
}

func TestArtifactOf(t *testing.T) {
	t.Parallel()
	subject := `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("s").String() + `","size":3}`
	cases := []struct {
		name, body   string
		artifactType string
		hasSubject   bool
		err          error
	}{
		{"artifactType wins", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"a/b","config":{"mediaType":"c/d"},"subject":` + subject + `}`, "a/b", true, nil},
		{"config type otherwise", `{"schemaVersion":2,"config":{"mediaType":"c/d"},"layers":[]}`, "c/d", false, nil},
		{"index: only artifactType", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"subject":` + subject + `}`, "", true, nil},
		{"invalid subject", `{"schemaVersion":2,"subject":{"mediaType":"x/y","digest":"sha256:zz","size":1}}`, "", false, ErrInvalidManifest},
		{"not JSON", `{`, "", false, ErrInvalidManifest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := ArtifactOf([]byte(tc.body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || a.ArtifactType != tc.artifactType || (a.Subject != nil) != tc.hasSubject {
				t.Errorf("ArtifactOf = %+v, %v; want type %q, subject %v", a, err, tc.artifactType, tc.hasSubject)
			}
		})
	}
}

func TestAddReferrers(t *testing.T) {
	t.Parallel()
	desc := func(s string) imgspecv1.Descriptor {
		return imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString(s), Size: 1, ArtifactType: "t/" + s}
	}
	first, changed, err := AddReferrers(nil, []imgspecv1.Descriptor{desc("a"), desc("a")})
	if err != nil || !changed {
		t.Fatalf("new index: changed %v, %v", changed, err)
	}
	if descs, err := ParseReferrersIndex(first); err != nil || len(descs) != 1 || descs[0].ArtifactType != "t/a" {
		t.Fatalf("new index lists %+v, %v; want a once", descs, err)
	}
	// Another tool's index: its annotations and unknown fields are kept.
	other := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","annotations":{"k":"v"},"x-extra":1,` +
		`"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("a").String() + `","size":1,"x-entry":true}]}`
	same, changed, err := AddReferrers([]byte(other), []imgspecv1.Descriptor{desc("a")})
	if err != nil || changed || string(same) != other {
		t.Errorf("adding a listed referrer: changed %v, %v, index %s", changed, err, same)
	}
	merged, changed, err := AddReferrers([]byte(other), []imgspecv1.Descriptor{desc("b")})
	if err != nil || !changed {
		t.Fatalf("adding b: changed %v, %v", changed, err)
	}
	var m map[string]any
	if err := json.Unmarshal(merged, &m); err != nil {
		t.Fatal(err)
	}
	entries, _ := m["manifests"].([]any)
	if m["x-extra"] == nil || m["annotations"] == nil || len(entries) != 2 || entries[0].(map[string]any)["x-entry"] != true {
		t.Errorf("merged index lost fields: %s", merged)
	}
	if _, _, err := AddReferrers([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}`), nil); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("adding to an image manifest: err = %v, want ErrInvalidManifest", err)
	}
}

// FuzzReferrersIndex feeds registry answers to the referrers parsers: they must not panic, and
// an index AddReferrers accepts must list what was added, once.
func FuzzReferrersIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"` + digest.FromString("a").String() + `","size":1,"artifactType":"x"}],"annotations":{"k":"v"}}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[],"subject":{"mediaType":"a/b","digest":"sha256:00","size":1}}`))
	f.Add([]byte(`{"manifests":null}`))
	add := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString("added"), Size: 3}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ArtifactOf(b)
		in, err := ParseReferrersIndex(b)
		if err != nil {
			return
		}
		want := 1
		for _, d := range in {
			if d.Digest == add.Digest {
				want = 0 // listed already: nothing added
			}
		}
		out, _, err := AddReferrers(b, []imgspecv1.Descriptor{add})
		if err != nil {
			return // e.g. a manifests field of the wrong shape that the descriptor parse tolerated
		}
		descs, err := ParseReferrersIndex(out)
		if err != nil {
			t.Fatalf("AddReferrers wrote an index it cannot read: %v\n%s", err, out)
		}
		n := 0
		for _, d := range descs {
			if d.Digest == add.Digest {
				n++
			}
		}
		if want == 1 && n != 1 {
			t.Fatalf("the added referrer is listed %d times in %s", n, out)
		}
	})
}
