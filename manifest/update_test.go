package manifest

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// layerTypes lists the media types of m's layers.
func layerTypes(m Manifest) []string {
	var out []string
	for _, l := range m.LayerInfos() {
		out = append(out, l.MediaType)
	}
	return out
}

// layerDigests lists the digests of m's layers.
func layerDigests(m Manifest) []digest.Digest {
	var out []digest.Digest
	for _, l := range m.LayerInfos() {
		out = append(out, l.Digest)
	}
	return out
}

// blobInfos turns LayerInfos into the BlobInfos an UpdateOptions takes.
func blobInfos(m Manifest) []types.BlobInfo {
	var out []types.BlobInfo
	for _, l := range m.LayerInfos() {
		out = append(out, l.BlobInfo)
	}
	return out
}

func TestUpdateConversions(t *testing.T) {
	t.Parallel()
	ociGzip, s2Gzip := imgspecv1.MediaTypeImageLayerGzip, DockerV2Schema2LayerMediaType
	noSubject := mutateJSON(t, "oci-manifest.json", func(d map[string]any) { delete(d, "subject") })
	cases := []struct {
		name       string
		blob       []byte
		to         string
		configType string
		layerType  string
	}{
		{"schema2 to OCI", readTestdata(t, "docker-schema2.json"), imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageConfig, ociGzip},
		{"OCI to schema2", noSubject, DockerV2Schema2MediaType, DockerV2Schema2ConfigMediaType, s2Gzip},
		{"OCI to OCI", readTestdata(t, "oci-manifest.json"), imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageConfig, ociGzip},
		{"artifact to OCI", readTestdata(t, "oci-artifact-with-config.json"), imgspecv1.MediaTypeImageManifest, "application/vnd.example.config.v1+json", "application/vnd.example.data.v1.tar+gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := FromBlob(tc.blob, "")
			if err != nil {
				t.Fatal(err)
			}
			out, err := Update(src, UpdateOptions{MIMEType: tc.to, LayerInfos: blobInfos(src)})
			if err != nil {
				t.Fatal(err)
			}
			checkConverted(t, src, out, tc.to, tc.configType, tc.layerType)
			// The source is untouched.
			if b, _ := src.Serialize(); !bytes.Equal(b, tc.blob) {
				t.Error("Update changed its input")
			}
			// And converting back gives the original content.
			back, err := Update(out, UpdateOptions{MIMEType: src.MIMEType()})
			if err != nil {
				t.Fatal(err)
			}
			if back.ConfigInfo().MediaType != src.ConfigInfo().MediaType || !slices.Equal(layerTypes(back), layerTypes(src)) {
				t.Errorf("round trip gave %v, want %v", layerTypes(back), layerTypes(src))
			}
		})
	}
}

// checkConverted checks an Update result: type, preserved digests and sizes, target media
// types, and a serialization that parses as the target with its mediaType field set.
func checkConverted(t *testing.T, src, out Manifest, mimeType, configType, layerType string) {
	t.Helper()
	if out.MIMEType() != mimeType {
		t.Fatalf("MIMEType = %s", out.MIMEType())
	}
	sc, oc := src.ConfigInfo(), out.ConfigInfo()
	if oc.Digest != sc.Digest || oc.Size != sc.Size || oc.MediaType != configType {
		t.Errorf("config %+v, source %+v", oc, sc)
	}
	if !slices.Equal(layerDigests(out), layerDigests(src)) {
		t.Errorf("layers %v, want %v", layerDigests(out), layerDigests(src))
	}
	for _, mt := range layerTypes(out) {
		if mt != layerType {
			t.Errorf("layer type %s, want %s", mt, layerType)
		}
	}
	b, err := out.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if GuessMIMEType(b) != mimeType || !strings.Contains(string(b), `"mediaType":"`+mimeType+`"`) {
		t.Errorf("serialized %s does not declare %s", b, mimeType)
	}
	if _, err := FromBlob(b, mimeType); err != nil {
		t.Errorf("re-parsing: %v", err)
	}
}

func TestUpdateKeepsOCIFields(t *testing.T) {
	t.Parallel()
	src := mustFromBlob(t, "oci-manifest.json").(*OCI1)
	infos := blobInfos(src)
	infos[0] = types.BlobInfo{Digest: digest.FromString("new"), Size: 3}
	out, err := Update(src, UpdateOptions{LayerInfos: infos})
	if err != nil {
		t.Fatal(err)
	}
	o := out.(*OCI1)
	if o.Subject == nil || o.Subject.Digest != src.Subject.Digest || o.Annotations["com.example.key1"] != "value1" {
		t.Errorf("lost subject or annotations: %+v", o.Manifest)
	}
	if o.Layers[0].Digest != digest.FromString("new") || o.Layers[0].MediaType != imgspecv1.MediaTypeImageLayerGzip {
		t.Errorf("layer 0 = %+v", o.Layers[0])
	}
	// Embedded data of an unchanged descriptor survives.
	withData := mutateJSON(t, "oci-artifact-minimal.json", func(d map[string]any) { d["config"].(map[string]any)["data"] = "e30=" })
	a, err := FromBlob(withData, "")
	if err != nil {
		t.Fatal(err)
	}
	out, err = Update(a, UpdateOptions{LayerInfos: blobInfos(a)})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.(*OCI1).Config.Data; string(d) != "{}" || out.(*OCI1).ArtifactType != "application/vnd.example+type" {
		t.Errorf("config data %q, artifactType %q", d, out.(*OCI1).ArtifactType)
	}
}

func TestUpdateCompression(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		file      string
		to        string
		newType   string
		wantType  string
		wantError error
	}{
		{"schema2 decompressed", "docker-schema2.json", "", DockerV2SchemaLayerMediaTypeUncompressed, DockerV2SchemaLayerMediaTypeUncompressed, nil},
		{"schema2 decompressed, OCI vocabulary", "docker-schema2.json", "", imgspecv1.MediaTypeImageLayer, DockerV2SchemaLayerMediaTypeUncompressed, nil},
		{"schema2 to zstd", "docker-schema2.json", "", imgspecv1.MediaTypeImageLayerZstd, "", ErrConversionLoss},
		{"schema2 to OCI zstd", "docker-schema2.json", imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageLayerZstd, imgspecv1.MediaTypeImageLayerZstd, nil},
		{"OCI to zstd", "oci-manifest.json", "", imgspecv1.MediaTypeImageLayerZstd, imgspecv1.MediaTypeImageLayerZstd, nil},
		{"OCI to uncompressed schema2", "oci-manifest.json", DockerV2Schema2MediaType, imgspecv1.MediaTypeImageLayer, "", ErrConversionLoss}, // subject
		{"artifact layer to schema2", "oci-artifact-with-config.json", DockerV2Schema2MediaType, "", "", ErrConversionLoss},
		{"schema1 to OCI uncompressed", "schema1-unsigned.json", imgspecv1.MediaTypeImageManifest, DockerV2SchemaLayerMediaTypeUncompressed, imgspecv1.MediaTypeImageLayer, nil},
		{"schema1 stays gzip", "schema1-unsigned.json", "", DockerV2SchemaLayerMediaTypeUncompressed, "", ErrConversionLoss},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := mustFromBlob(t, tc.file)
			infos := blobInfos(src)
			for i := range infos {
				infos[i].MediaType = tc.newType
				infos[i].Size = 1
			}
			opts := UpdateOptions{MIMEType: tc.to, LayerInfos: infos}
			if src.ConfigInfo().Digest == "" {
				opts.ConfigInfo = &types.BlobInfo{Digest: digest.FromString("config"), Size: 6}
			}
			out, err := Update(src, opts)
			if !errors.Is(err, tc.wantError) {
				t.Fatalf("Update = %v, want %v", err, tc.wantError)
			}
			if err == nil && !slices.Equal(layerTypes(out), slices.Repeat([]string{tc.wantType}, len(infos))) {
				t.Errorf("layer types %v, want %s", layerTypes(out), tc.wantType)
			}
		})
	}
}

func TestUpdateConversionLoss(t *testing.T) {
	t.Parallel()
	s2 := DockerV2Schema2MediaType
	cases := []struct {
		name string
		blob []byte
	}{
		{"subject", readTestdata(t, "oci-manifest.json")},
		{"minimal artifact", readTestdata(t, "oci-artifact-minimal.json")},
		{"artifact without config", readTestdata(t, "oci-artifact-without-config.json")},
		{"artifact with config", readTestdata(t, "oci-artifact-with-config.json")},
		{"non-image config without artifactType", mutateJSON(t, "oci-artifact-with-config.json", func(d map[string]any) { delete(d, "artifactType") })},
		{"zstd layer", mutateJSON(t, "oci-manifest.json", func(d map[string]any) {
			delete(d, "subject")
			at(d, "layers", 1)["mediaType"] = imgspecv1.MediaTypeImageLayerZstd
		})},
		{"non-distributable zstd layer", mutateJSON(t, "oci-manifest.json", func(d map[string]any) {
			delete(d, "subject")
			at(d, "layers", 1)["mediaType"] = imgspecv1.MediaTypeImageLayerNonDistributableZstd //nolint:staticcheck // testing the deprecated type
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := FromBlob(tc.blob, "")
			if err != nil {
				t.Fatal(err)
			}
			if out, err := Update(m, UpdateOptions{MIMEType: s2}); !errors.Is(err, ErrConversionLoss) {
				t.Fatalf("Update = %v, %v; want ErrConversionLoss", out, err)
			}
		})
	}
}

func TestUpdateForeignLayers(t *testing.T) {
	t.Parallel()
	urls := []string{"https://example.com/layer"}
	blob := mutateJSON(t, "docker-schema2.json", func(d map[string]any) {
		l := at(d, "layers", 0)
		l["mediaType"] = DockerV2Schema2ForeignLayerMediaTypeGzip
		l["urls"] = urls
	})
	src, err := FromBlob(blob, "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Update(src, UpdateOptions{MIMEType: imgspecv1.MediaTypeImageManifest})
	if err != nil {
		t.Fatal(err)
	}
	l := out.LayerInfos()[0]
	if l.MediaType != imgspecv1.MediaTypeImageLayerNonDistributableGzip || !slices.Equal(l.URLs, urls) { //nolint:staticcheck // the mapping under test
		t.Errorf("foreign layer became %+v", l)
	}
	back, err := Update(out, UpdateOptions{MIMEType: DockerV2Schema2MediaType})
	if err != nil || back.LayerInfos()[0].MediaType != DockerV2Schema2ForeignLayerMediaTypeGzip {
		t.Fatalf("back to schema2: %v", err)
	}
	// Copying the layer's bytes (a non-foreign type) drops the URLs.
	infos := blobInfos(src)
	infos[0].MediaType, infos[0].URLs = DockerV2Schema2LayerMediaType, nil
	out, err = Update(src, UpdateOptions{LayerInfos: infos})
	if err != nil || out.LayerInfos()[0].URLs != nil || out.LayerInfos()[0].MediaType != DockerV2Schema2LayerMediaType {
		t.Fatalf("copied foreign layer: %+v, %v", out.LayerInfos()[0], err)
	}
}

func TestUpdateFromSchema1(t *testing.T) {
	t.Parallel()
	src := mustFromBlob(t, "schema1-throwaway.json")
	config := types.BlobInfo{Digest: digest.FromString("config"), Size: 6}
	infos := blobInfos(src)
	for i := range infos {
		infos[i].Size = int64(100 + i)
	}
	for _, to := range []string{DockerV2Schema2MediaType, imgspecv1.MediaTypeImageManifest} {
		if _, err := Update(src, UpdateOptions{MIMEType: to, ConfigInfo: &config}); err == nil {
			t.Errorf("%s: converted schema1 without layer sizes", to)
		}
		out, err := Update(src, UpdateOptions{MIMEType: to, ConfigInfo: &config, LayerInfos: infos})
		if err != nil {
			t.Fatalf("%s: %v", to, err)
		}
		li := out.LayerInfos()
		if len(li) != 5 || li[0].Digest.Encoded()[:8] != "6a5a5368" || li[4].Digest.Encoded()[:8] != "960e52ec" ||
			li[0].Size != 100 || li[4].Size != 112 {
			t.Errorf("%s: layers %v", to, layerDigests(out))
		}
		if out.ConfigInfo().Digest != config.Digest {
			t.Errorf("%s: config %+v", to, out.ConfigInfo())
		}
		if _, err := Update(src, UpdateOptions{MIMEType: to, LayerInfos: infos}); err == nil {
			t.Errorf("%s: converted schema1 without a config", to)
		}
	}
}

func TestUpdateSchema1Layers(t *testing.T) {
	t.Parallel()
	src := mustFromBlob(t, "schema1-libtrust-signed.json")
	infos := blobInfos(src)
	infos[0].Digest = digest.FromString("base")
	out, err := Update(src, UpdateOptions{LayerInfos: infos})
	if err != nil {
		t.Fatal(err)
	}
	s1 := out.(*Schema1)
	if out.MIMEType() != DockerV2Schema1MediaType || len(s1.Signatures) != 0 || s1.FSLayers[2].BlobSum != digest.FromString("base") {
		t.Errorf("updated schema1: %+v", s1)
	}
	if _, err := Update(mustFromBlob(t, "docker-schema2.json"), UpdateOptions{MIMEType: DockerV2Schema1SignedMediaType}); !errors.Is(err, ErrUnsupportedMIMEType) {
		t.Errorf("schema2 to schema1: %v", err)
	}
}

func TestUpdateMisuse(t *testing.T) {
	t.Parallel()
	src := mustFromBlob(t, "docker-schema2.json")
	if out, err := Update(src, UpdateOptions{}); err != nil || out != src {
		t.Errorf("no-op Update = %v, %v", out, err)
	}
	if _, err := Update(src, UpdateOptions{LayerInfos: blobInfos(src)[:1]}); err == nil {
		t.Error("accepted 1 layer info for 3 layers")
	}
	if _, err := Update(src, UpdateOptions{MIMEType: DockerV2ListMediaType}); !errors.Is(err, ErrUnsupportedMIMEType) {
		t.Errorf("to a list: %v", err)
	}
	infos := blobInfos(src)
	infos[1].Digest = ""
	if _, err := Update(src, UpdateOptions{LayerInfos: infos}); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("empty digest: %v", err)
	}
	infos = blobInfos(src)
	infos[1].Size = -1
	if _, err := Update(src, UpdateOptions{LayerInfos: infos}); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("unknown size: %v", err)
	}
}

func TestLayerCompression(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		DockerV2Schema2LayerMediaType:            "gzip",
		DockerV2Schema2ForeignLayerMediaTypeGzip: "gzip",
		imgspecv1.MediaTypeImageLayerGzip:        "gzip",
		imgspecv1.MediaTypeImageLayerZstd:        "zstd",
		imgspecv1.MediaTypeImageLayer:            "",
		DockerV2SchemaLayerMediaTypeUncompressed: "",
		DockerV2Schema2ForeignLayerMediaType:     "",
		"application/vnd.example+type":           "unknown",
		"":                                       "unknown",
	}
	for mt, want := range cases {
		if got := LayerCompression(mt); got != want {
			t.Errorf("LayerCompression(%q) = %q, want %q", mt, got, want)
		}
	}
}

func TestConfigDiffIDs(t *testing.T) {
	t.Parallel()
	d := digest.FromString("x")
	cases := []struct {
		name    string
		config  string
		want    []digest.Digest
		wantErr error
	}{
		{"oci", `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + d.String() + `"]}}`, []digest.Digest{d}, nil},
		{"no layers", `{"rootfs":{"type":"layers"}}`, []digest.Digest{}, nil},
		{"no rootfs", `{}`, nil, ErrInvalidManifest},
		{"wrong rootfs type", `{"rootfs":{"type":"files","diff_ids":[]}}`, nil, ErrInvalidManifest},
		{"bad diff ID", `{"rootfs":{"type":"layers","diff_ids":["sha256:1"]}}`, nil, ErrInvalidManifest},
		{"not JSON", `{`, nil, ErrInvalidManifest},
		{"too large", `{"rootfs":{"type":"layers","diff_ids":[]}` + strings.Repeat(" ", 4<<20) + `}`, nil, iolimits.ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ConfigDiffIDs([]byte(tc.config))
			if !errors.Is(err, tc.wantErr) || (err == nil && !slices.Equal(got, tc.want)) {
				t.Fatalf("ConfigDiffIDs = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
