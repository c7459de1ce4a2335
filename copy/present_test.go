package copy

import (
	"bytes"
	"slices"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

func answer(has bool, err error) func(digest.Digest) (bool, error) {
	return func(digest.Digest) (bool, error) { return has, err }
}

// blobCalls counts every blob operation of the last copy, on both ends.
func blobCalls(src, dest *fakeRef) int {
	s, d := src.lastSource(), dest.lastDest()
	s.mu.Lock()
	defer s.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(s.getBlobs) + len(d.reuseOpts)
	for _, c := range d.putBlobs {
		n += c
	}
	return n
}

func TestCopySkipIfPresentSingle(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		has         func(digest.Digest) (bool, error)
		opts        Options
		reject      string // manifest type the destination refuses
		wantChecked bool
		wantSkipped bool
		wantType    string // written type when not the source's
	}{
		{name: "present", has: answer(true, nil), wantChecked: true, wantSkipped: true},
		{name: "present, digests preserved", has: answer(true, nil), opts: Options{PreserveDigests: true}, wantChecked: true, wantSkipped: true},
		{name: "absent", has: answer(false, nil), wantChecked: true},
		{name: "check fails", has: answer(false, errors.New("registry on fire")), wantChecked: true},
		{name: "conversion forced", has: answer(true, nil), opts: Options{ForceManifestMIMEType: imgspecv1.MediaTypeImageManifest}, wantType: imgspecv1.MediaTypeImageManifest},
		{name: "compression changes", has: answer(true, nil), opts: Options{DestinationCompression: "zstd"}, wantType: imgspecv1.MediaTypeImageManifest},
		{name: "type refused again", has: answer(true, nil), reject: manifest.DockerV2Schema2MediaType, wantChecked: true, wantType: imgspecv1.MediaTypeImageManifest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, img := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 20<<10, "gzip"), makeLayer(t, 2, 10<<10, ""))
			dest := newFakeRef("dest", newMemStore())
			dest.dest.hasManifest = tc.has
			dest.dest.reject = map[string]bool{tc.reject: tc.reject != ""}
			var report bytes.Buffer
			tc.opts.ReportWriter = &report
			res := mustCopy(t, dest, src, &tc.opts)
			d := dest.lastDest()
			if checked := slices.Equal(d.checked, []digest.Digest{img.digest}); checked != tc.wantChecked {
				t.Errorf("HasManifest calls %v, want checked=%v", d.checked, tc.wantChecked)
			}
			if res.AlreadyPresent != tc.wantSkipped || strings.Contains(report.String(), "Skipping: destination already has "+img.digest.String()) != tc.wantSkipped {
				t.Errorf("AlreadyPresent=%v, report:\n%s", res.AlreadyPresent, report.String())
			}
			top, ok := dest.store.topManifest()
			if !ok {
				t.Fatal("no manifest committed")
			}
			if tc.wantType != "" {
				if top.mimeType != tc.wantType || res.BlobsCopied == 0 {
					t.Errorf("written %s with %d blobs copied, want a converted copy", top.mimeType, res.BlobsCopied)
				}
				return
			}
			if !bytes.Equal(top.blob, img.manifest) || res.ManifestDigest != img.digest || res.DigestChanged {
				t.Errorf("manifest %s not written byte-exact", res.ManifestDigest)
			}
			if n := blobCalls(src, dest); tc.wantSkipped && (n != 0 || len(d.manifests) != 1 || res.BlobsCopied+res.BlobsReused != 0 || res.BytesCopied != 0) {
				t.Errorf("skipped copy made %d blob calls, manifests %v, result %+v", n, d.manifests, res)
			}
			if !tc.wantSkipped && res.BlobsCopied != 3 {
				t.Errorf("normal copy copied %d blobs, want 3", res.BlobsCopied)
			}
		})
	}
}

// TestCopyNameOnPut checks that a copy tells the destination it may name the top-level
// manifest as it writes it only when no referrers or digest tags follow that manifest.
func TestCopyNameOnPut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		want bool
	}{
		{name: "image only", want: true},
		{name: "referrers", opts: Options{Referrers: true}},
		{name: "digest tags", opts: Options{DigestTags: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, _ := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 1<<10, "gzip"))
			dest := newFakeRef("dest", newMemStore())
			mustCopy(t, dest, src, &tc.opts)
			if got := dest.lastDest().namedOnPut; got != tc.want {
				t.Errorf("NameOnPut called: %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCopySkipIfPresentUnreachable: a presence check that failed for the network (after the
// destination's retries) fails the copy with that error, before any blob is tried.
func TestCopySkipIfPresentUnreachable(t *testing.T) {
	t.Parallel()
	src, _ := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 20<<10, "gzip"))
	dest := newFakeRef("dest", newMemStore())
	down := errors.Wrap(syscall.ECONNREFUSED, "pinging registry")
	dest.dest.hasManifest = answer(false, down)
	err := expectFailure(t, dest, src, &Options{})
	if !errors.Is(err, syscall.ECONNREFUSED) || types.Classify(err) != types.ClassNetwork {
		t.Errorf("error %v, want the check's (network)", err)
	}
	if n := blobCalls(src, dest); n != 0 {
		t.Errorf("%d blob calls after the destination was found unreachable, want 0", n)
	}
}

func TestCopySkipIfPresentIndex(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		opts        Options
		preferOne   bool
		destTypes   []string
		wantChecked string // "index", "arm64" (the instance), or "" (not consulted)
	}{
		{name: "all instances", wantChecked: "index"},
		{name: "registry-like type list", destTypes: []string{imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType, imgspecv1.MediaTypeImageIndex, manifest.DockerV2ListMediaType}, wantChecked: "index"},
		{name: "one platform into single-image destination", preferOne: true, opts: Options{SourceCtx: &types.SystemContext{OSChoice: "linux", ArchitectureChoice: "arm64"}}, wantChecked: "arm64"},
		{name: "platform subset", opts: Options{Platforms: []types.Platform{{OS: "linux", Architecture: "amd64"}}}},
		{name: "index converted", destTypes: []string{imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageIndex}},
		{name: "forced type", opts: Options{ForceManifestMIMEType: manifest.DockerV2Schema2MediaType}},
		{name: "index only", opts: Options{MultiArch: MultiArchIndexOnly}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, imgs, idx := newIndexSource(t, manifest.DockerV2ListMediaType, "amd64", "arm64")
			dest := newFakeRef("dest", newMemStore())
			dest.dest.hasManifest = answer(true, nil)
			dest.dest.props.PrefersSinglePlatform = tc.preferOne
			dest.dest.props.SupportedManifestMIMETypes = tc.destTypes
			res := mustCopy(t, dest, src, &tc.opts)
			d := dest.lastDest()
			want := map[string][]digest.Digest{"": nil, "index": {digest.FromBytes(idx)}, "arm64": {imgs[1].digest}}[tc.wantChecked]
			if !slices.Equal(d.checked, want) {
				t.Fatalf("HasManifest calls %v, want %v", d.checked, want)
			}
			if tc.wantChecked == "" {
				return
			}
			if n := blobCalls(src, dest); n != 0 || len(d.manifests) != 1 || !res.AlreadyPresent {
				t.Errorf("skipped copy made %d blob calls, manifests %v, result %+v", n, d.manifests, res)
			}
			if tc.wantChecked == "index" && (!bytes.Equal(res.Manifest, idx) || len(res.Instances) != 2 || res.Instances[1].Platform.Architecture != "arm64") {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestIndexWrittenExact(t *testing.T) {
	t.Parallel()
	list, oci := manifest.DockerV2ListMediaType, imgspecv1.MediaTypeImageIndex
	s2, o1 := manifest.DockerV2Schema2MediaType, imgspecv1.MediaTypeImageManifest
	all := []string{o1, s2, oci, list}
	cases := []struct {
		name string
		in   indexExactInput
		want bool
	}{
		{name: "any destination", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: list}, InstanceTypes: []string{s2, s2}}, want: true},
		{name: "registry", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: oci, DestSupported: all}, InstanceTypes: []string{o1}}, want: true},
		{name: "preserve digests", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: oci, PreserveDigests: true}, InstanceTypes: []string{o1}}, want: true},
		{name: "nested index, any destination", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: oci}, InstanceTypes: []string{oci}}, want: true},
		{name: "nested index, listed types", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: oci, DestSupported: all}, InstanceTypes: []string{oci}}},
		{name: "instance type not accepted", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: list, DestSupported: []string{o1, oci, list}}, InstanceTypes: []string{s2}}},
		{name: "index type not accepted", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: list, DestSupported: []string{o1, s2, oci}}, InstanceTypes: []string{s2}}},
		{name: "OCI instances in a Docker list", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: list, DestSupported: all}, InstanceTypes: []string{o1}}, want: true},
		{name: "forced", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: list, Force: s2}, InstanceTypes: []string{s2}}},
		{name: "compress", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: oci}, InstanceTypes: []string{o1}, Compress: "gzip"}},
		{name: "decompress", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: oci}, InstanceTypes: []string{o1}, Decompress: true}},
		{name: "destination wants compression", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: oci}, InstanceTypes: []string{o1}, DestDesired: types.Compress}, want: true},
		{name: "destination wants decompression", in: indexExactInput{Index: indexPlanInput{SrcMIMEType: oci}, InstanceTypes: []string{o1}, DestDesired: types.Decompress}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := indexWrittenExact(tc.in); got != tc.want {
				t.Errorf("indexWrittenExact = %v, want %v", got, tc.want)
			}
		})
	}
}
