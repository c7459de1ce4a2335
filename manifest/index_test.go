package manifest

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

func TestIndexFromBlobExamples(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file       string
		mimeType   string
		instances  int
		secondArch string // "" when the second entry has no platform
		secondType string
	}{
		{"docker-list.json", DockerV2ListMediaType, 2, "amd64", DockerV2Schema2MediaType},
		{"oci-index.json", imgspecv1.MediaTypeImageIndex, 2, "amd64", imgspecv1.MediaTypeImageManifest},
		{"oci-index-nested.json", imgspecv1.MediaTypeImageIndex, 2, "", imgspecv1.MediaTypeImageIndex},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			b := readTestdata(t, tc.file)
			for _, given := range []string{"", tc.mimeType} {
				idx, err := IndexFromBlob(b, given)
				if err != nil {
					t.Fatal(err)
				}
				inst := idx.Instances()
				if idx.MIMEType() != tc.mimeType || len(inst) != tc.instances || inst[0].Platform.Architecture != "ppc64le" {
					t.Fatalf("parsed %s as %s with %+v", tc.file, idx.MIMEType(), inst)
				}
				if (inst[1].Platform == nil) != (tc.secondArch == "") || inst[1].MediaType != tc.secondType ||
					(inst[1].Platform != nil && inst[1].Platform.Architecture != tc.secondArch) {
					t.Errorf("second instance %+v", inst[1])
				}
				if s, err := idx.Serialize(); err != nil || !bytes.Equal(s, b) {
					t.Errorf("Serialize changed the bytes (%v)", err)
				}
			}
		})
	}
}

func TestIndexFromBlobMalformed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		blob     []byte
		mimeType string
		want     error
	}{
		{"manifest", readTestdata(t, "oci-manifest.json"), "", ErrUnsupportedMIMEType},
		{"not JSON", []byte("]"), "", ErrInvalidManifest},
		{"list without mediaType", mutateJSON(t, "docker-list.json", func(d map[string]any) { delete(d, "mediaType") }), DockerV2ListMediaType, ErrInvalidManifest},
		{"list schemaVersion 1", mutateJSON(t, "docker-list.json", func(d map[string]any) { d["schemaVersion"] = 1 }), DockerV2ListMediaType, ErrInvalidManifest},
		{"list with layers", mutateJSON(t, "docker-list.json", func(d map[string]any) { d["layers"] = []any{} }), "", ErrInvalidManifest},
		{"list entry bad digest", mutateJSON(t, "docker-list.json", func(d map[string]any) { at(d, "manifests", 0)["digest"] = "sha256:" }), "", ErrInvalidManifest},
		{"list without manifests", mutateJSON(t, "docker-list.json", func(d map[string]any) { delete(d, "manifests") }), "", ErrInvalidManifest},
		{"index with config", mutateJSON(t, "oci-index.json", func(d map[string]any) { d["config"] = map[string]any{} }), "", ErrInvalidManifest},
		{"index declared as list", readTestdata(t, "oci-index.json"), DockerV2ListMediaType, ErrInvalidManifest},
		{"index entry without mediaType", mutateJSON(t, "oci-index.json", func(d map[string]any) { delete(at(d, "manifests", 1), "mediaType") }), "", ErrInvalidManifest},
		{"index entry negative size", mutateJSON(t, "oci-index.json", func(d map[string]any) { at(d, "manifests", 1)["size"] = -5 }), "", ErrInvalidManifest},
		{"index manifests null", mutateJSON(t, "oci-index.json", func(d map[string]any) { d["manifests"] = nil }), imgspecv1.MediaTypeImageIndex, ErrInvalidManifest},
		{"index bad subject", mutateJSON(t, "oci-index.json", func(d map[string]any) { d["subject"] = map[string]any{"mediaType": "x", "size": 1, "digest": "x"} }), "", ErrInvalidManifest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idx, err := IndexFromBlob(tc.blob, tc.mimeType)
			if !errors.Is(err, tc.want) {
				t.Fatalf("IndexFromBlob = %v, %v; want %v", idx, err, tc.want)
			}
		})
	}
}

func TestUpdateIndexConversions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file, to string
	}{
		{"docker-list.json", imgspecv1.MediaTypeImageIndex},
		{"oci-index.json", DockerV2ListMediaType},
		{"oci-index.json", imgspecv1.MediaTypeImageIndex},
		{"docker-list.json", DockerV2ListMediaType},
	}
	for _, tc := range cases {
		t.Run(tc.file+" to "+tc.to, func(t *testing.T) {
			t.Parallel()
			src := mustIndexFromBlob(t, tc.file)
			inst := src.Instances()
			inst[1].MediaType = map[string]string{DockerV2ListMediaType: DockerV2Schema2MediaType,
				imgspecv1.MediaTypeImageIndex: imgspecv1.MediaTypeImageManifest}[tc.to]
			out, err := UpdateIndex(src, IndexUpdateOptions{MIMEType: tc.to, Instances: inst})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := out.Serialize()
			if out.MIMEType() != tc.to || GuessMIMEType(b) != tc.to || !strings.Contains(string(b), `"mediaType":"`+tc.to+`"`) {
				t.Fatalf("converted to %s: %s", out.MIMEType(), b)
			}
			got := out.Instances()
			if len(got) != 2 || got[0].Digest != inst[0].Digest || got[1].MediaType != inst[1].MediaType ||
				got[1].Platform.Architecture != "amd64" || got[0].Platform.OS != "linux" {
				t.Errorf("instances %+v", got)
			}
		})
	}
}

// TestUpdateIndexArtifactTypeToList: an entry whose artifactType is the image config type (as
// `crane index append` writes) is an image and converts to a Docker list entry; one with any
// other artifactType is an artifact, which a list cannot express.
func TestUpdateIndexArtifactTypeToList(t *testing.T) {
	t.Parallel()
	src := mustIndexFromBlob(t, "oci-index.json")
	inst := src.Instances()
	for i := range inst {
		inst[i].MediaType = DockerV2Schema2MediaType
	}
	inst[0].ArtifactType = imgspecv1.MediaTypeImageConfig
	inst[1].ArtifactType = DockerV2Schema2ConfigMediaType
	out, err := UpdateIndex(src, IndexUpdateOptions{MIMEType: DockerV2ListMediaType, Instances: inst})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Instances(); out.MIMEType() != DockerV2ListMediaType || len(got) != 2 || got[0].ArtifactType != "" || got[0].Digest != inst[0].Digest {
		t.Errorf("converted: %s %+v", out.MIMEType(), got)
	}
	inst[1].ArtifactType = "application/vnd.example.sbom+json"
	_, err = UpdateIndex(src, IndexUpdateOptions{MIMEType: DockerV2ListMediaType, Instances: inst})
	if !errors.Is(err, ErrConversionLoss) || !strings.Contains(err.Error(), "manifests[1] is an artifact (application/vnd.example.sbom+json)") {
		t.Errorf("artifact entry: %v", err)
	}
}

func TestUpdateIndexSubset(t *testing.T) {
	t.Parallel()
	src := mustIndexFromBlob(t, "oci-index.json")
	if out, err := UpdateIndex(src, IndexUpdateOptions{}); err != nil || out != src {
		t.Fatalf("no-op UpdateIndex = %v, %v", out, err)
	}
	out, err := UpdateIndex(src, IndexUpdateOptions{Instances: src.Instances()[1:]})
	if err != nil {
		t.Fatal(err)
	}
	o := out.(*OCI1Index)
	if len(o.Manifests) != 1 || o.Manifests[0].Platform.Architecture != "amd64" || o.Annotations["com.example.key2"] != "value2" {
		t.Errorf("subset: %+v", o.Index)
	}
	if b, _ := src.Serialize(); !bytes.Equal(b, readTestdata(t, "oci-index.json")) {
		t.Error("UpdateIndex changed its input")
	}
	// A Docker list keeps the platform features of the instances it keeps.
	list := mustIndexFromBlob(t, "docker-list.json")
	out, err = UpdateIndex(list, IndexUpdateOptions{Instances: list.Instances()[1:]})
	if err != nil {
		t.Fatal(err)
	}
	if l := out.(*Schema2List); len(l.Manifests) != 1 || !slices.Equal(l.Manifests[0].Platform.Features, []string{"sse4"}) {
		t.Errorf("list subset: %+v", l.Manifests)
	}
}

func TestUpdateIndexLoss(t *testing.T) {
	t.Parallel()
	toList := IndexUpdateOptions{MIMEType: DockerV2ListMediaType}
	cases := []struct {
		name string
		blob []byte
	}{
		{"nested index", readTestdata(t, "oci-index-nested.json")},
		{"artifact entry", mutateJSON(t, "oci-index.json", func(d map[string]any) { at(d, "manifests", 0)["artifactType"] = "application/vnd.example+type" })},
		{"entry without platform", mutateJSON(t, "oci-index.json", func(d map[string]any) { delete(at(d, "manifests", 0), "platform") })},
		{"index artifactType", mutateJSON(t, "oci-index.json", func(d map[string]any) { d["artifactType"] = "application/vnd.example+type" })},
		{"index subject", mutateJSON(t, "oci-index.json", func(d map[string]any) {
			d["subject"] = map[string]any{"mediaType": imgspecv1.MediaTypeImageManifest, "size": 7682,
				"digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"}
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idx, err := IndexFromBlob(tc.blob, "")
			if err != nil {
				t.Fatal(err)
			}
			if out, err := UpdateIndex(idx, toList); !errors.Is(err, ErrConversionLoss) {
				t.Fatalf("UpdateIndex = %v, %v; want ErrConversionLoss", out, err)
			}
		})
	}
	if _, err := UpdateIndex(mustIndexFromBlob(t, "oci-index.json"), IndexUpdateOptions{MIMEType: DockerV2Schema2MediaType}); !errors.Is(err, ErrUnsupportedMIMEType) {
		t.Errorf("index to a manifest type: %v", err)
	}
}
