package copy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

const (
	s1  = manifest.DockerV2Schema1MediaType
	s1s = manifest.DockerV2Schema1SignedMediaType
	s2  = manifest.DockerV2Schema2MediaType
	oci = imgspecv1.MediaTypeImageManifest
	dl  = manifest.DockerV2ListMediaType
	oix = imgspecv1.MediaTypeImageIndex
)

// Destination capabilities as the transports announce them.
var (
	anyDest      []string                              // dir: takes anything
	registryDest = []string{oci, s2, dl, oix, s1s, s1} // a registry
	ociDest      = []string{oci, oix}                  // OCI layout
	archiveDest  = []string{s2}                        // docker-archive
	s1OnlyDest   = []string{s1s}                       // an old registry
)

func TestPlanManifest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      manifestPlanInput
		want    []string
		keep    bool
		wantErr string
	}{
		{name: "schema2 to any: byte-exact", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: anyDest}, want: []string{s2, oci}, keep: true},
		{name: "oci to any: byte-exact", in: manifestPlanInput{SrcMIMEType: oci, DestSupported: anyDest}, want: []string{oci, s2}, keep: true},
		{name: "schema1 to any: byte-exact, fallbacks schema2 first", in: manifestPlanInput{SrcMIMEType: s1s, DestSupported: anyDest}, want: []string{s1s, s2, oci}, keep: true},
		{name: "schema2 to registry: keep, fallback oci", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: registryDest}, want: []string{s2, oci}, keep: true},
		{name: "schema2 to oci layout: convert", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: ociDest}, want: []string{oci}},
		{name: "oci to docker-archive: convert", in: manifestPlanInput{SrcMIMEType: oci, DestSupported: archiveDest}, want: []string{s2}},
		{name: "schema1 to oci layout: convert", in: manifestPlanInput{SrcMIMEType: s1, DestSupported: ociDest}, want: []string{oci}},
		{name: "schema1 to a layout that cannot use it: OCI first", in: manifestPlanInput{SrcMIMEType: s1s, DestUnusable: []string{s1s, s1}}, want: []string{oci, s2}},
		{name: "schema2 to a layout unaffected by unusable schema1", in: manifestPlanInput{SrcMIMEType: s2, DestUnusable: []string{s1s, s1}}, want: []string{s2, oci}, keep: true},
		{name: "preserve: unusable schema1 refused, naming --format", in: manifestPlanInput{SrcMIMEType: s1, DestUnusable: []string{s1s, s1}, PreserveDigests: true}, wantErr: "schema1 manifest (it has no image config), so schema1 is converted there, which changes the digest; drop --preserve-digests to convert (--format oci"},
		{name: "schema1 to registry: keep, fallbacks schema2 first (as skopeo)", in: manifestPlanInput{SrcMIMEType: s1s, DestSupported: registryDest}, want: []string{s1s, s2, oci}, keep: true},
		{name: "schema1 with layer changes: convert, schema2 first", in: manifestPlanInput{SrcMIMEType: s1s, DestSupported: registryDest, LayersChange: true}, want: []string{s2, oci}},
		{name: "schema1 with zstd layers: OCI", in: manifestPlanInput{SrcMIMEType: s1s, DestSupported: registryDest, LayersChange: true, NeedsOCI: true}, want: []string{oci, s2}},
		{name: "schema2 to schema1-only dest: impossible", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: s1OnlyDest}, wantErr: "no manifest type to write"},
		{name: "forced oci from schema2", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: registryDest, Force: oci}, want: []string{oci}},
		{name: "forced oci from oci keeps bytes", in: manifestPlanInput{SrcMIMEType: oci, DestSupported: anyDest, Force: oci}, want: []string{oci}, keep: true},
		{name: "forced schema2 not accepted", in: manifestPlanInput{SrcMIMEType: oci, DestSupported: ociDest, Force: s2}, wantErr: "destination accepts only"},
		{name: "forced schema1 is not a conversion target", in: manifestPlanInput{SrcMIMEType: s2, Force: s1}, wantErr: "only"},
		{name: "layers change keeps the type, no byte copy", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: registryDest, LayersChange: true}, want: []string{s2, oci}},
		{name: "zstd needs oci", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: registryDest, LayersChange: true, NeedsOCI: true}, want: []string{oci, s2}},
		{name: "zstd needs oci, any dest", in: manifestPlanInput{SrcMIMEType: s2, LayersChange: true, NeedsOCI: true}, want: []string{oci, s2}},
		{name: "zstd into docker-archive tries schema2 (conversion fails later)", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: archiveDest, LayersChange: true, NeedsOCI: true}, want: []string{s2}},
		{name: "preserve: byte-exact allowed, no fallbacks", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: registryDest, PreserveDigests: true}, want: []string{s2}, keep: true},
		{name: "preserve: conversion refused", in: manifestPlanInput{SrcMIMEType: s2, DestSupported: ociDest, PreserveDigests: true}, wantErr: "converted from " + s2 + " to " + oci},
		{name: "preserve: forced conversion refused", in: manifestPlanInput{SrcMIMEType: s2, Force: oci, PreserveDigests: true}, wantErr: "forced type"},
		{name: "preserve: compression change refused", in: manifestPlanInput{SrcMIMEType: oci, LayersChange: true, PreserveDigests: true}, wantErr: "layer compression would change"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := planManifest(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", p, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Candidates, tc.want) || p.KeepOriginal != tc.keep {
				t.Errorf("got %v keep=%v, want %v keep=%v", p.Candidates, p.KeepOriginal, tc.want, tc.keep)
			}
		})
	}
}

// TestPlanManifestMatrix checks the invariants of planManifest over every source type ×
// destination capability × option.
func TestPlanManifestMatrix(t *testing.T) {
	t.Parallel()
	sources := []string{s1, s1s, s2, oci}
	dests := map[string][]string{"any": anyDest, "registry": registryDest, "oci": ociDest, "archive": archiveDest, "s1only": s1OnlyDest}
	forces := []string{"", s2, oci}
	for _, src := range sources {
		for dname, dest := range dests {
			for _, force := range forces {
				for opt := 0; opt < 8; opt++ {
					in := manifestPlanInput{SrcMIMEType: src, DestSupported: dest, Force: force,
						LayersChange: opt&1 != 0, NeedsOCI: opt&2 != 0 && opt&1 != 0, PreserveDigests: opt&4 != 0}
					name := fmt.Sprintf("%s→%s/force=%q/%+v", src, dname, force, in)
					p, err := planManifest(in)
					if err != nil {
						checkPlanError(t, name, in, err)
						continue
					}
					checkPlan(t, name, in, p)
				}
			}
		}
	}
}

func checkPlan(t *testing.T, name string, in manifestPlanInput, p manifestPlan) {
	t.Helper()
	if len(p.Candidates) == 0 {
		t.Errorf("%s: no candidates", name)
		return
	}
	for _, c := range p.Candidates {
		if dest := in.DestSupported; dest != nil && !slices.Contains(dest, c) {
			t.Errorf("%s: candidate %s not accepted by destination", name, c)
		}
		if c != in.SrcMIMEType && !isConversionTarget(c) {
			t.Errorf("%s: candidate %s is not a conversion target", name, c)
		}
	}
	if p.KeepOriginal && (p.Candidates[0] != in.SrcMIMEType || in.LayersChange) {
		t.Errorf("%s: KeepOriginal with %v", name, p.Candidates)
	}
	if in.Force != "" && (len(p.Candidates) != 1 || p.Candidates[0] != in.Force) {
		t.Errorf("%s: forced type not alone: %v", name, p.Candidates)
	}
	if in.PreserveDigests && (!p.KeepOriginal || len(p.Candidates) != 1) {
		t.Errorf("%s: PreserveDigests without byte-exact plan: %v", name, p)
	}
	if !in.PreserveDigests && in.Force == "" && !in.LayersChange && acceptsType(in.DestSupported, in.SrcMIMEType) && !p.KeepOriginal {
		t.Errorf("%s: accepted source type not copied byte-exact: %v", name, p)
	}
	if in.NeedsOCI && in.Force == "" && acceptsType(in.DestSupported, oci) && p.Candidates[0] != oci {
		t.Errorf("%s: zstd layers but %s first", name, p.Candidates[0])
	}
}

func checkPlanError(t *testing.T, name string, in manifestPlanInput, err error) {
	t.Helper()
	switch {
	case in.PreserveDigests && strings.Contains(err.Error(), "preserving digests"):
	case in.Force != "" && !acceptsType(in.DestSupported, in.Force):
	case !acceptsType(in.DestSupported, oci) && !acceptsType(in.DestSupported, s2):
	default:
		t.Errorf("%s: unexpected error %v", name, err)
	}
}

func acceptsType(dest []string, t string) bool { return dest == nil || slices.Contains(dest, t) }

func TestPlanLayer(t *testing.T) {
	t.Parallel()
	const (
		dGzip = manifest.DockerV2Schema2LayerMediaType
		dTar  = manifest.DockerV2SchemaLayerMediaTypeUncompressed
		oGzip = imgspecv1.MediaTypeImageLayerGzip
		oZstd = imgspecv1.MediaTypeImageLayerZstd
		oTar  = imgspecv1.MediaTypeImageLayer
	)
	cases := []struct {
		name string
		in   layerPlanInput
		want layerPlan
	}{
		{"keep gzip", layerPlanInput{MediaType: dGzip, Compression: "gzip"}, layerPlan{layerKeep, "gzip", "gzip", dGzip, false}},
		{"keep uncompressed", layerPlanInput{MediaType: oTar, Compression: ""}, layerPlan{layerKeep, "", "", oTar, false}},
		{"dest wants decompress: docker gzip", layerPlanInput{MediaType: dGzip, Compression: "gzip", DestDesired: types.Decompress}, layerPlan{layerDecompress, "gzip", "", dTar, false}},
		{"dest wants decompress: oci zstd", layerPlanInput{MediaType: oZstd, Compression: "zstd", DestDesired: types.Decompress}, layerPlan{layerDecompress, "zstd", "", oTar, false}},
		{"dest decompress wins over option", layerPlanInput{MediaType: oGzip, Compression: "gzip", DestDesired: types.Decompress, Compress: "zstd"}, layerPlan{layerDecompress, "gzip", "", oTar, false}},
		{"option decompress", layerPlanInput{MediaType: oGzip, Compression: "gzip", Decompress: true}, layerPlan{layerDecompress, "gzip", "", oTar, false}},
		{"decompress uncompressed: keep", layerPlanInput{MediaType: dTar, Compression: "", Decompress: true}, layerPlan{layerKeep, "", "", dTar, false}},
		{"compress gzip", layerPlanInput{MediaType: dTar, Compression: "", Compress: "gzip"}, layerPlan{layerCompress, "", "gzip", dGzip, false}},
		{"compress zstd from docker tar uses oci type", layerPlanInput{MediaType: dTar, Compression: "", Compress: "zstd"}, layerPlan{layerCompress, "", "zstd", oZstd, false}},
		{"recompress gzip to zstd", layerPlanInput{MediaType: oGzip, Compression: "gzip", Compress: "zstd"}, layerPlan{layerRecompress, "gzip", "zstd", oZstd, false}},
		{"recompress zstd to gzip", layerPlanInput{MediaType: oZstd, Compression: "zstd", Compress: "gzip"}, layerPlan{layerRecompress, "zstd", "gzip", oGzip, false}},
		{"same compression requested: keep", layerPlanInput{MediaType: oGzip, Compression: "gzip", Compress: "gzip"}, layerPlan{layerKeep, "gzip", "gzip", oGzip, false}},
		{"dest wants compressed: gzip uncompressed docker layer", layerPlanInput{MediaType: dTar, Compression: "", DestDesired: types.Compress}, layerPlan{layerCompress, "", "gzip", dGzip, false}},
		{"dest wants compressed: keep uncompressed oci layer", layerPlanInput{MediaType: oTar, Compression: "", DestDesired: types.Compress}, layerPlan{layerKeep, "", "", oTar, false}},
		{"dest wants compressed: keep zstd", layerPlanInput{MediaType: oZstd, Compression: "zstd", DestDesired: types.Compress}, layerPlan{layerKeep, "zstd", "zstd", oZstd, false}},
		{"schema2 only: zstd source becomes gzip", layerPlanInput{MediaType: oZstd, Compression: "zstd", NoZstd: true}, layerPlan{layerRecompress, "zstd", "gzip", oGzip, false}},
		{"schema2 only: gzip kept", layerPlanInput{MediaType: dGzip, Compression: "gzip", NoZstd: true}, layerPlan{layerKeep, "gzip", "gzip", dGzip, false}},
		{"unknown compression kept", layerPlanInput{MediaType: "application/x-foo", Compression: "unknown", Decompress: true}, layerPlan{layerKeep, "unknown", "unknown", "application/x-foo", false}},
		{"foreign layer skipped when dest accepts urls", layerPlanInput{MediaType: manifest.DockerV2Schema2ForeignLayerMediaTypeGzip, Compression: "gzip", Foreign: true, DestAcceptsForeign: true, Decompress: true}, layerPlan{layerSkip, "gzip", "gzip", manifest.DockerV2Schema2ForeignLayerMediaTypeGzip, false}},
		{"foreign layer included becomes distributable", layerPlanInput{MediaType: manifest.DockerV2Schema2ForeignLayerMediaTypeGzip, Compression: "gzip", Foreign: true, DestAcceptsForeign: true, IncludeForeign: true}, layerPlan{layerKeep, "gzip", "gzip", dGzip, true}},
		{"oci non-distributable included and recompressed", layerPlanInput{MediaType: imgspecv1.MediaTypeImageLayerNonDistributableGzip, Compression: "gzip", Foreign: true, IncludeForeign: true, Compress: "zstd"}, layerPlan{layerRecompress, "gzip", "zstd", oZstd, true}}, //nolint:staticcheck // foreign input
		{"foreign layer into a classic docker-archive stays foreign, uncompressed", layerPlanInput{MediaType: manifest.DockerV2Schema2ForeignLayerMediaTypeGzip, Compression: "gzip", Foreign: true, DestDesired: types.Decompress}, layerPlan{layerDecompress, "gzip", "", manifest.DockerV2Schema2ForeignLayerMediaType, false}},
		{"foreign layer copied unchanged", layerPlanInput{MediaType: manifest.DockerV2Schema2ForeignLayerMediaTypeGzip, Compression: "gzip", Foreign: true, Decompress: true}, layerPlan{layerKeep, "gzip", "gzip", manifest.DockerV2Schema2ForeignLayerMediaTypeGzip, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := planLayer(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPlanInstances(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      instancePlanInput
		want    instanceMode
		wantErr string
	}{
		{"default registry: all", instancePlanInput{Mode: MultiArchDefault, DestAcceptsIndex: true}, instancesAll, ""},
		{"default docker-archive: system", instancePlanInput{Mode: MultiArchDefault, DestAcceptsIndex: true, DestPrefersSingle: true}, instancesOne, ""},
		{"default no index: system", instancePlanInput{Mode: MultiArchDefault}, instancesOne, ""},
		{"all into single-preferring dest that accepts index", instancePlanInput{Mode: MultiArchAll, DestAcceptsIndex: true, DestPrefersSingle: true}, instancesAll, ""},
		{"all without index support", instancePlanInput{Mode: MultiArchAll}, 0, "cannot store a multi-platform index"},
		{"system", instancePlanInput{Mode: MultiArchSystem, DestAcceptsIndex: true}, instancesOne, ""},
		{"subset", instancePlanInput{Mode: MultiArchDefault, Platforms: 2, DestAcceptsIndex: true}, instancesSubset, ""},
		{"one platform into single dest", instancePlanInput{Mode: MultiArchDefault, Platforms: 1}, instancesOne, ""},
		{"one platform with system mode", instancePlanInput{Mode: MultiArchSystem, Platforms: 1, DestAcceptsIndex: true}, instancesOne, ""},
		{"all plus one platform into docker-archive: all, platform listed", instancePlanInput{Mode: MultiArchAll, Platforms: 1, DestAcceptsIndex: true, DestPrefersSingle: true}, instancesAll, ""},
		{"all plus one platform into registry: subset", instancePlanInput{Mode: MultiArchAll, Platforms: 1, DestAcceptsIndex: true}, instancesSubset, ""},
		{"all plus two platforms into docker-archive: subset", instancePlanInput{Mode: MultiArchAll, Platforms: 2, DestAcceptsIndex: true, DestPrefersSingle: true}, instancesSubset, ""},
		{"two platforms into single dest", instancePlanInput{Mode: MultiArchDefault, Platforms: 2}, 0, "takes a single image"},
		{"index only", instancePlanInput{Mode: MultiArchIndexOnly, DestAcceptsIndex: true}, instancesIndexOnly, ""},
		{"index only without index support", instancePlanInput{Mode: MultiArchIndexOnly}, 0, "cannot store"},
		{"index only with platforms", instancePlanInput{Mode: MultiArchIndexOnly, Platforms: 1, DestAcceptsIndex: true}, 0, "platforms cannot be selected"},
		{"index only with a format or compression", instancePlanInput{Mode: MultiArchIndexOnly, DestAcceptsIndex: true, EditsImages: true}, 0, "its images are not copied, so a manifest format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := planInstances(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestPlanIndex(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      indexPlanInput
		want    indexPlan
		wantErr string
	}{
		{"keep list", indexPlanInput{SrcMIMEType: dl, DestSupported: registryDest}, indexPlan{dl, true}, ""},
		{"keep index, any dest", indexPlanInput{SrcMIMEType: oix}, indexPlan{oix, true}, ""},
		{"changed list rewritten", indexPlanInput{SrcMIMEType: dl, Changed: true}, indexPlan{dl, false}, ""},
		{"list into oci layout", indexPlanInput{SrcMIMEType: dl, DestSupported: ociDest}, indexPlan{oix, false}, ""},
		{"force oci converts list", indexPlanInput{SrcMIMEType: dl, Force: oci}, indexPlan{oix, false}, ""},
		{"force schema2 converts index", indexPlanInput{SrcMIMEType: oix, Force: s2, DestSupported: registryDest}, indexPlan{dl, false}, ""},
		{"list of converted oci instances becomes an oci index", indexPlanInput{SrcMIMEType: dl, Changed: true, InstancesOCI: true}, indexPlan{oix, false}, ""},
		{"list of oci instances stays a list where oci indexes are refused", indexPlanInput{SrcMIMEType: dl, Changed: true, InstancesOCI: true, DestSupported: []string{s2, oci, dl}}, indexPlan{dl, false}, ""},
		{"unchanged list of oci instances kept byte-exact", indexPlanInput{SrcMIMEType: dl, InstancesOCI: true, DestSupported: registryDest}, indexPlan{dl, true}, ""},
		{"unchanged list of oci instances kept, any dest", indexPlanInput{SrcMIMEType: dl, InstancesOCI: true}, indexPlan{dl, true}, ""},
		{"dest lists no index types: keep", indexPlanInput{SrcMIMEType: dl, DestSupported: archiveDest}, indexPlan{dl, true}, ""},
		{"preserve: unchanged ok", indexPlanInput{SrcMIMEType: oix, PreserveDigests: true}, indexPlan{oix, true}, ""},
		{"preserve: subset refused", indexPlanInput{SrcMIMEType: oix, Changed: true, PreserveDigests: true}, indexPlan{}, "index would be rewritten"},
		{"preserve: conversion refused", indexPlanInput{SrcMIMEType: dl, DestSupported: ociDest, PreserveDigests: true}, indexPlan{}, "converted from"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := planIndex(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestLayerMediaType(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, c, want string }{
		{manifest.DockerV2Schema2LayerMediaType, "", manifest.DockerV2SchemaLayerMediaTypeUncompressed},
		{manifest.DockerV2SchemaLayerMediaTypeUncompressed, "gzip", manifest.DockerV2Schema2LayerMediaType},
		{manifest.DockerV2Schema2LayerMediaType, "zstd", imgspecv1.MediaTypeImageLayerZstd},
		{imgspecv1.MediaTypeImageLayerGzip, "", imgspecv1.MediaTypeImageLayer},
		{imgspecv1.MediaTypeImageLayer, "gzip", imgspecv1.MediaTypeImageLayerGzip},
		{"", "", manifest.DockerV2SchemaLayerMediaTypeUncompressed}, // schema1 layers are Docker's
	}
	for _, tc := range cases {
		if got := layerMediaType(tc.in, tc.c); got != tc.want {
			t.Errorf("layerMediaType(%q, %q) = %q, want %q", tc.in, tc.c, got, tc.want)
		}
	}
}
