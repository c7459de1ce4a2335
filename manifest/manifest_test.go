package manifest

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
)

func TestGuessMIMEType(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		blob []byte
		want string
	}{
		{"docker schema2", readTestdata(t, "docker-schema2.json"), DockerV2Schema2MediaType},
		{"docker list", readTestdata(t, "docker-list.json"), DockerV2ListMediaType},
		{"oci manifest", readTestdata(t, "oci-manifest.json"), imgspecv1.MediaTypeImageManifest},
		{"oci artifact", readTestdata(t, "oci-artifact-minimal.json"), imgspecv1.MediaTypeImageManifest},
		{"oci index", readTestdata(t, "oci-index.json"), imgspecv1.MediaTypeImageIndex},
		{"schema1 signed", readTestdata(t, "schema1-signed.json"), DockerV2Schema1SignedMediaType},
		{"schema1 unsigned", readTestdata(t, "schema1-unsigned.json"), DockerV2Schema1MediaType},
		{"oci manifest without mediaType", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { delete(d, "mediaType") }), imgspecv1.MediaTypeImageManifest},
		{"oci index without mediaType", mutateJSON(t, "oci-index.json", func(d map[string]any) { delete(d, "mediaType") }), imgspecv1.MediaTypeImageIndex},
		{"schema2 without mediaType", mutateJSON(t, "docker-schema2.json", func(d map[string]any) { delete(d, "mediaType") }), DockerV2Schema2MediaType},
		{"schema1 with empty signatures", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) { d["signatures"] = []any{} }), DockerV2Schema1MediaType},
		{"unknown mediaType", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { d["mediaType"] = "application/vnd.oci.artifact.manifest.v1+json" }), ""},
		{"unknown schemaVersion", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { d["schemaVersion"] = 3 }), ""},
		{"schemaVersion 2 without anything", []byte(`{"schemaVersion":2}`), ""},
		{"not JSON", []byte("not a manifest"), ""},
		{"empty", nil, ""},
		{"JSON array", []byte(`[]`), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := GuessMIMEType(tc.blob); got != tc.want {
				t.Errorf("GuessMIMEType = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFromBlobExamples(t *testing.T) {
	t.Parallel()
	const (
		specConfig = "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
		emptyJSON  = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
		busybox    = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
	)
	cases := []struct {
		file        string
		mimeType    string
		config      digest.Digest
		firstLayer  digest.Digest
		layers      int
		emptyLayers int
	}{
		{"docker-schema2.json", DockerV2Schema2MediaType, specConfig, "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f", 3, 0},
		{"oci-manifest.json", imgspecv1.MediaTypeImageManifest, specConfig, "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0", 3, 0},
		{"oci-artifact-minimal.json", imgspecv1.MediaTypeImageManifest, emptyJSON, emptyJSON, 1, 0},
		{"oci-artifact-without-config.json", imgspecv1.MediaTypeImageManifest, emptyJSON, "sha256:e258d248fda94c63753607f7c4494ee0fcbe92f1a76bfdac795c9d84101eb317", 1, 0},
		{"oci-artifact-with-config.json", imgspecv1.MediaTypeImageManifest, "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", "sha256:e258d248fda94c63753607f7c4494ee0fcbe92f1a76bfdac795c9d84101eb317", 1, 0},
		{"schema1-libtrust-signed.json", DockerV2Schema1SignedMediaType, "", busybox, 3, 0},
		{"schema1-unsigned.json", DockerV2Schema1MediaType, "", busybox, 3, 0},
		{"schema1-throwaway.json", DockerV2Schema1MediaType, "", "sha256:6a5a5368e0c2d3e5909184fa28ddfd56072e7ff3ee9a945876f7eee5896ef5bb", 15, 10},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			b := readTestdata(t, tc.file)
			for _, given := range []string{"", tc.mimeType, tc.mimeType + "; charset=utf-8"} {
				m, err := FromBlob(b, given)
				if err != nil {
					t.Fatalf("FromBlob(%q): %v", given, err)
				}
				checkExample(t, m, b, tc.mimeType, tc.config, tc.firstLayer, tc.layers, tc.emptyLayers)
			}
		})
	}
}

// checkExample checks a parsed example against the expectations of TestFromBlobExamples.
func checkExample(t *testing.T, m Manifest, b []byte, mimeType string, config, first digest.Digest, layers, empty int) {
	t.Helper()
	if m.MIMEType() != mimeType {
		t.Errorf("MIMEType = %q, want %q", m.MIMEType(), mimeType)
	}
	if m.ConfigInfo().Digest != config {
		t.Errorf("config = %q, want %q", m.ConfigInfo().Digest, config)
	}
	li := m.LayerInfos()
	if len(li) != layers || li[0].Digest != first {
		t.Fatalf("layers = %d (first %s), want %d (first %s)", len(li), li[0].Digest, layers, first)
	}
	n := 0
	for _, l := range li {
		if l.EmptyLayer {
			n++
		}
	}
	if n != empty {
		t.Errorf("%d empty layers, want %d", n, empty)
	}
	s, err := m.Serialize()
	if err != nil || !bytes.Equal(s, b) {
		t.Errorf("Serialize changed the bytes (err %v)", err)
	}
}

func TestFromBlobMalformed(t *testing.T) {
	t.Parallel()
	s1 := DockerV2Schema1MediaType
	cases := []struct {
		name     string
		blob     []byte
		mimeType string
		want     error
	}{
		{"not JSON", []byte("{"), "", ErrInvalidManifest},
		{"not JSON, typed", []byte("{"), DockerV2Schema2MediaType, ErrInvalidManifest},
		{"unrecognized", []byte(`{"schemaVersion":3}`), "", ErrUnsupportedMIMEType},
		{"index type", readTestdata(t, "oci-index.json"), "", ErrUnsupportedMIMEType},
		{"unknown type given", readTestdata(t, "oci-manifest.json"), "application/x-foo", ErrUnsupportedMIMEType},
		{"too large", append(readTestdata(t, "oci-manifest.json"), bytes.Repeat([]byte(" "), iolimits.MaxManifestBodySize)...), "", iolimits.ErrTooLarge},
		{"schema2 schemaVersion 1", mutateJSON(t, "docker-schema2.json", func(d map[string]any) { d["schemaVersion"] = 1 }), DockerV2Schema2MediaType, ErrInvalidManifest},
		{"schema2 with OCI mediaType", mutateJSON(t, "docker-schema2.json", func(d map[string]any) { d["mediaType"] = imgspecv1.MediaTypeImageManifest }), DockerV2Schema2MediaType, ErrInvalidManifest},
		{"schema2 with manifests", mutateJSON(t, "docker-schema2.json", func(d map[string]any) { d["manifests"] = []any{} }), "", ErrInvalidManifest},
		{"schema2 bad layer digest", mutateJSON(t, "docker-schema2.json", func(d map[string]any) { at(d, "layers", 1)["digest"] = "sha256:abc" }), "", ErrInvalidManifest},
		{"schema2 negative size", mutateJSON(t, "docker-schema2.json", func(d map[string]any) { at(d, "layers", 0)["size"] = -1 }), "", ErrInvalidManifest},
		{"schema2 without layers", mutateJSON(t, "docker-schema2.json", func(d map[string]any) { delete(d, "layers") }), "", ErrInvalidManifest},
		{"schema2 size is a string", mutateJSON(t, "docker-schema2.json", func(d map[string]any) { at(d, "layers", 0)["size"] = "12" }), "", ErrInvalidManifest},
		{"oci with manifests", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { d["manifests"] = []any{} }), "", ErrInvalidManifest},
		{"oci with fsLayers", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { d["FSLayers"] = []any{} }), "", ErrInvalidManifest},
		{"oci declared schema2", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { d["mediaType"] = DockerV2Schema2MediaType }), imgspecv1.MediaTypeImageManifest, ErrInvalidManifest},
		{"oci layer without mediaType", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { delete(at(d, "layers", 2), "mediaType") }), "", ErrInvalidManifest},
		{"oci config without digest", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { delete(d["config"].(map[string]any), "digest") }), "", ErrInvalidManifest},
		{"oci bad subject", mutateJSON(t, "oci-manifest.json", func(d map[string]any) { d["subject"].(map[string]any)["digest"] = "md5:00" }), "", ErrInvalidManifest},
		{"oci data mismatch", mutateJSON(t, "oci-artifact-minimal.json", func(d map[string]any) { d["config"].(map[string]any)["data"] = "e319" }), "", ErrInvalidManifest},
		{"oci data not base64", mutateJSON(t, "oci-artifact-minimal.json", func(d map[string]any) { d["config"].(map[string]any)["data"] = "!!" }), "", ErrInvalidManifest},
		{"schema1 fsLayers/history mismatch", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) { d["fsLayers"] = d["fsLayers"].([]any)[:2] }), "", ErrInvalidManifest},
		{"schema1 no layers", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) { d["fsLayers"], d["history"] = []any{}, []any{} }), "", ErrInvalidManifest},
		{"schema1 schemaVersion 2", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) { d["schemaVersion"] = 2 }), s1, ErrInvalidManifest},
		{"schema1 bad blobSum", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) { at(d, "fsLayers", 1)["blobSum"] = "sha256:zz" }), "", ErrInvalidManifest},
		{"schema1 history not JSON", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) { at(d, "history", 1)["v1Compatibility"] = "{" }), "", ErrInvalidManifest},
		{"schema1 invalid ID", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) { at(d, "history", 2)["v1Compatibility"] = `{"id":"../x"}` }), "", ErrInvalidManifest},
		{"schema1 broken parent chain", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) { swapHistory(d, 0, 1) }), "", ErrInvalidManifest},
		{"schema1 repeated ID", schema1WithIDs(t, "a", "b", "a"), "", ErrInvalidManifest},
		{"schema1 base with parent", mutateJSON(t, "schema1-unsigned.json", func(d map[string]any) {
			d["history"] = d["history"].([]any)[:2]
			d["fsLayers"] = d["fsLayers"].([]any)[:2]
		}), "", ErrInvalidManifest},
		{"schema1 signature tampered with", readTestdata(t, "schema1-tampered-signed.json"), "", types.ErrSignatureInvalid},
		{"schema1 edited after signing", readTestdata(t, "schema1-signed.json"), "", types.ErrSignatureInvalid},
		{"schema1 payload differs", schema1SmuggledLayers(t), "", ErrInvalidManifest},
		{"schema1 protected not base64", schema1WithProtected(t, "%%%"), "", ErrInvalidManifest},
		{"schema1 formatLength too large", schema1WithProtected(t, protectedHeader(`{"formatLength":99999999,"formatTail":"Cn0"}`)), "", ErrInvalidManifest},
		{"schema1 formatLength negative", schema1WithProtected(t, protectedHeader(`{"formatLength":-1,"formatTail":"Cn0"}`)), "", ErrInvalidManifest},
		{"schema1 formatTail missing", schema1WithProtected(t, protectedHeader(`{"formatLength":10}`)), "", ErrInvalidManifest},
		{"schema1 signatures disagree", schema1WithTwoSignatures(t), "", ErrInvalidManifest},
		{"schema1 signatures not a list", []byte(`{"schemaVersion":1,"signatures":{}}`), DockerV2Schema1SignedMediaType, ErrInvalidManifest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := FromBlob(tc.blob, tc.mimeType)
			if !errors.Is(err, tc.want) {
				t.Fatalf("FromBlob = %v, %v; want error %v", m, err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestSerializeAfterChange(t *testing.T) {
	t.Parallel()
	b := readTestdata(t, "oci-manifest.json")
	m := mustFromBlob(t, "oci-manifest.json").(*OCI1)
	m.Annotations["com.example.key1"] = "changed"
	s, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(s, b) || !strings.Contains(string(s), `"changed"`) {
		t.Fatalf("Serialize of a changed manifest returned the original bytes")
	}
	// Serialize hands out copies: changing them must not affect the next call.
	s2 := mustFromBlob(t, "docker-schema2.json")
	out, _ := s2.Serialize()
	out[0] = 'X'
	again, _ := s2.Serialize()
	if again[0] != '{' {
		t.Fatal("Serialize returned shared bytes")
	}
}

func TestBuiltSerialize(t *testing.T) {
	t.Parallel()
	empty := digest.Digest("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
	oci := &OCI1{}
	oci.Config = imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: empty, Size: 2}
	cases := []struct {
		name     string
		value    interface{ Serialize() ([]byte, error) }
		mimeType string
	}{
		{"schema2", &Schema2{Config: Schema2Descriptor{MediaType: DockerV2Schema2ConfigMediaType, Size: 2, Digest: empty}}, DockerV2Schema2MediaType},
		{"oci", oci, imgspecv1.MediaTypeImageManifest},
		{"list", &Schema2List{}, DockerV2ListMediaType},
		{"oci index", &OCI1Index{}, imgspecv1.MediaTypeImageIndex},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := tc.value.Serialize()
			if err != nil {
				t.Fatal(err)
			}
			// Built values get schemaVersion, mediaType and empty lists, so they parse back.
			if !strings.Contains(string(b), `"mediaType":"`+tc.mimeType+`"`) || GuessMIMEType(b) != tc.mimeType {
				t.Fatalf("serialized %s", b)
			}
			if IsIndexType(tc.mimeType) {
				_, err = IndexFromBlob(b, "")
			} else {
				_, err = FromBlob(b, "")
			}
			if err != nil {
				t.Fatalf("re-parsing %s: %v", b, err)
			}
		})
	}
}

func TestSupportedMIMETypes(t *testing.T) {
	t.Parallel()
	got := SupportedMIMETypes()
	for _, f := range allTestdata {
		if mt := GuessMIMEType(readTestdata(t, f)); !slices.Contains(got, mt) {
			t.Errorf("%s: %q not in SupportedMIMETypes", f, mt)
		}
	}
	if !IsIndexType(DockerV2ListMediaType) || !IsIndexType(imgspecv1.MediaTypeImageIndex+"; x=y") || IsIndexType(DockerV2Schema2MediaType) {
		t.Error("IsIndexType is wrong")
	}
}

func TestSchema2WithoutMediaType(t *testing.T) {
	t.Parallel()
	b := mutateJSON(t, "docker-schema2.json", func(d map[string]any) { delete(d, "mediaType") })
	m, err := FromBlob(b, "")
	if err != nil || m.MIMEType() != DockerV2Schema2MediaType {
		t.Fatalf("FromBlob = %v, %v", m, err)
	}
	if s, _ := m.Serialize(); !bytes.Equal(s, b) {
		t.Error("Serialize changed the bytes")
	}
	out, err := Update(m, UpdateOptions{MIMEType: imgspecv1.MediaTypeImageManifest})
	if err != nil || out.ConfigInfo().MediaType != imgspecv1.MediaTypeImageConfig {
		t.Fatalf("Update = %v, %v", out, err)
	}
}
