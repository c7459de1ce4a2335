package copy

import (
	"bytes"

	digest "github.com/opencontainers/go-digest"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

func TestPlanReuse(t *testing.T) {
	t.Parallel()
	keepGzip := layerPlan{Action: layerKeep, From: compressionGzip, To: compressionGzip}
	toZstd := layerPlan{Action: layerRecompress, From: compressionGzip, To: compressionZstd}
	cases := []struct {
		name string
		in   reusePlanInput
		want types.ReuseOptions
	}{
		{name: "byte-exact copy: the same blob only", in: reusePlanInput{Layer: keepGzip, KeepManifest: true},
			want: types.ReuseOptions{RequiredCompression: "gzip", OriginalCompression: "gzip"}},
		{name: "converted manifest: substitutes of the same compression", in: reusePlanInput{Layer: keepGzip},
			want: types.ReuseOptions{CanSubstitute: true, RequiredCompression: "gzip", OriginalCompression: "gzip"}},
		{name: "recompression requested: zstd only", in: reusePlanInput{Layer: toZstd},
			want: types.ReuseOptions{CanSubstitute: true, RequiredCompression: "zstd", OriginalCompression: "gzip"}},
		{name: "recompression with preserved digests: no substitutes", in: reusePlanInput{Layer: toZstd, PreserveDigests: true},
			want: types.ReuseOptions{RequiredCompression: "zstd", OriginalCompression: "gzip"}},
		{name: "compression of an uncompressed layer", in: reusePlanInput{Layer: layerPlan{Action: layerCompress, From: compressionNone, To: compressionGzip}},
			want: types.ReuseOptions{CanSubstitute: true, RequiredCompression: "gzip", OriginalCompression: "uncompressed"}},
		{name: "decompression", in: reusePlanInput{Layer: layerPlan{Action: layerDecompress, From: compressionZstd, To: compressionNone}},
			want: types.ReuseOptions{CanSubstitute: true, RequiredCompression: "uncompressed", OriginalCompression: "zstd"}},
		{name: "unknown compression: exact blob only", in: reusePlanInput{Layer: layerPlan{Action: layerKeep, From: "unknown", To: "unknown"}},
			want: types.ReuseOptions{}},
		{name: "config: exact blob only", in: reusePlanInput{IsConfig: true}, want: types.ReuseOptions{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := planReuse(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCopyCompressionHonouredOverReuse: the destination already has (or can mount) the gzip
// source layers; zstd is requested, so they must be recompressed, not reused.
func TestCopyCompressionHonouredOverReuse(t *testing.T) {
	t.Parallel()
	layers := []testLayer{makeLayer(t, 1, 40<<10, "gzip"), makeLayer(t, 2, 20<<10, "gzip")}
	for _, tc := range []struct {
		name  string
		setup func(dest *fakeRef)
	}{
		{name: "present", setup: func(dest *fakeRef) {
			for _, l := range layers {
				dest.store.putBlob(l.blob)
			}
		}},
		{name: "mountable", setup: func(dest *fakeRef) {
			dest.dest.mounts = map[digest.Digest]string{layers[0].digest(): "other/repo", layers[1].digest(): "other/repo"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, _ := newSingleSource(t, manifest.DockerV2Schema2MediaType, layers...)
			dest := newFakeRef("dest", newMemStore())
			dest.dest.props.DesiredLayerCompression = types.Compress
			tc.setup(dest)
			res := mustCopy(t, dest, src, &Options{DestinationCompression: "zstd"})
			m := parse(t, res.Manifest)
			if m.MediaType != imgspecv1.MediaTypeImageManifest {
				t.Errorf("manifest %s, want OCI (zstd needs it)", m.MediaType)
			}
			for i, l := range m.Layers {
				b, _ := dest.store.blob(l.Digest)
				if l.MediaType != imgspecv1.MediaTypeImageLayerZstd || !bytes.HasPrefix(b, zstdMagic) {
					t.Errorf("layer %d: %s, starts % x; want zstd", i, l.MediaType, b[:min(4, len(b))])
				}
				if got, _ := decompressBytes(t, b); !bytes.Equal(got, layers[i].uncompressed) {
					t.Errorf("layer %d: content changed", i)
				}
			}
		})
	}
}

// TestCopyNoCompressionSwap: substitutes in another compression are never taken unless that
// compression was asked for, so a zstd blob never lands in a schema2 manifest.
func TestCopyNoCompressionSwap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		srcType  string
		layer    testLayer
		opts     Options
		props    types.DestinationProperties
		wantType string
		wantComp string
	}{
		{name: "conversion to OCI keeps gzip", srcType: manifest.DockerV2Schema2MediaType, layer: makeLayer(t, 1, 30<<10, "gzip"),
			opts: Options{ForceManifestMIMEType: imgspecv1.MediaTypeImageManifest}, wantType: imgspecv1.MediaTypeImageManifest, wantComp: "gzip"},
		{name: "gzip on push stays schema2", srcType: manifest.DockerV2Schema2MediaType, layer: makeLayer(t, 2, 30<<10, ""),
			props: types.DestinationProperties{DesiredLayerCompression: types.Compress}, wantType: manifest.DockerV2Schema2MediaType, wantComp: "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, _ := newSingleSource(t, tc.srcType, tc.layer)
			zstdBlob := compressBytes(t, tc.layer.uncompressed, "zstd")
			dest := newFakeRef("dest", newMemStore())
			tc.props.AcceptsIndex, tc.props.ConcurrentBlobs = true, true
			dest.dest.props = tc.props
			sub := types.BlobInfo{Digest: dest.store.putBlob(zstdBlob), Size: int64(len(zstdBlob)), MediaType: imgspecv1.MediaTypeImageLayerZstd}
			dest.dest.substitutes = map[digest.Digest]types.BlobInfo{tc.layer.digest(): sub}
			res := mustCopy(t, dest, src, &tc.opts)
			m := parse(t, res.Manifest)
			b, _ := dest.store.blob(m.Layers[0].Digest)
			if _, c := decompressBytes(t, b); res.MIMEType != tc.wantType || c != tc.wantComp || m.Layers[0].Digest == sub.Digest {
				t.Errorf("written %s with a %s layer %s, want %s with %s", res.MIMEType, c, m.Layers[0].Digest, tc.wantType, tc.wantComp)
			}
		})
	}
}

func TestCopyZstdImpossible(t *testing.T) {
	t.Parallel()
	src, _ := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 10<<10, "gzip"))
	dest := newFakeRef("dest", newMemStore())
	err := expectFailure(t, dest, src, &Options{DestinationCompression: "zstd", ForceManifestMIMEType: manifest.DockerV2Schema2MediaType})
	if !errors.Is(err, types.ErrUsage) {
		t.Errorf("got %v, want a usage error", err)
	}
}
