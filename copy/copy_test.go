package copy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

func copyImage(t *testing.T, dest, src *fakeRef, opts *Options) (*Result, error) {
	t.Helper()
	res, err := Image(context.Background(), dest, src, opts)
	if d := dest.lastDest(); !d.closed {
		t.Errorf("destination not closed")
	}
	if s := src.lastSource(); !s.closed {
		t.Errorf("source not closed")
	}
	return res, err
}

func mustCopy(t *testing.T, dest, src *fakeRef, opts *Options) *Result {
	t.Helper()
	res, err := copyImage(t, dest, src, opts)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if !dest.lastDest().committed {
		t.Fatalf("not committed")
	}
	return res
}

func expectFailure(t *testing.T, dest, src *fakeRef, opts *Options) error {
	t.Helper()
	_, err := copyImage(t, dest, src, opts)
	if err == nil {
		t.Fatal("copy succeeded, want an error")
	}
	if dest.lastDest().committed {
		t.Errorf("destination committed after failure %v", err)
	}
	if _, ok := dest.store.topManifest(); ok {
		t.Errorf("manifest visible after failure")
	}
	return err
}

type parsedManifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
	} `json:"config"`
	Layers []struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int64         `json:"size"`
	} `json:"layers"`
	Manifests []struct {
		Digest    digest.Digest `json:"digest"`
		MediaType string        `json:"mediaType"`
		Platform  struct {
			Architecture string `json:"architecture"`
		} `json:"platform"`
	} `json:"manifests"`
}

func parse(t *testing.T, b []byte) parsedManifest {
	t.Helper()
	var p parsedManifest
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkBlobsPresent asserts that every blob the manifest names is committed in s.
func checkBlobsPresent(t *testing.T, s *memStore, m parsedManifest) {
	t.Helper()
	for _, d := range append([]digest.Digest{m.Config.Digest}, layerDigests(m)...) {
		b, ok := s.blob(d)
		if !ok {
			t.Errorf("blob %s missing at destination", d)
		} else if digest.FromBytes(b) != d {
			t.Errorf("blob %s stored with wrong content", d)
		}
	}
}

func layerDigests(m parsedManifest) []digest.Digest {
	var out []digest.Digest
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestCopyByteExact(t *testing.T) {
	t.Parallel()
	for _, mt := range []string{manifest.DockerV2Schema2MediaType, imgspecv1.MediaTypeImageManifest} {
		t.Run(mt, func(t *testing.T) {
			t.Parallel()
			src, img := newSingleSource(t, mt, makeLayer(t, 1, 100<<10, "gzip"), makeLayer(t, 2, 30<<10, ""), makeLayer(t, 3, 10<<10, "gzip"))
			dest := newFakeRef("dest", newMemStore())
			var report bytes.Buffer
			res := mustCopy(t, dest, src, &Options{ReportWriter: &report})
			top, _ := dest.store.topManifest()
			if !bytes.Equal(top.blob, img.manifest) || top.mimeType != mt {
				t.Errorf("manifest not copied byte-exact")
			}
			if res.ManifestDigest != img.digest || res.DigestChanged || res.MIMEType != mt {
				t.Errorf("result %+v, want digest %s unchanged", res, img.digest)
			}
			for _, l := range img.layers {
				if b, _ := dest.store.blob(l.digest()); !bytes.Equal(b, l.blob) {
					t.Errorf("layer %s not copied unchanged", l.digest())
				}
			}
			if b, _ := dest.store.blob(img.configDigest()); !bytes.Equal(b, img.config) {
				t.Errorf("config not copied")
			}
			if res.BlobsCopied != 4 || res.BlobsReused != 0 || res.BytesCopied == 0 {
				t.Errorf("stats %+v", res)
			}
			for _, want := range []string{"Copying blob sha256:", " done", "Copying config sha256:", "Writing manifest to image destination"} {
				if !strings.Contains(report.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, report.String())
				}
			}
		})
	}
}

func TestCopyConvertSchema2ToOCI(t *testing.T) {
	t.Parallel()
	src, img := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 50<<10, "gzip"), makeLayer(t, 2, 10<<10, ""))
	dest := newFakeRef("dest", newMemStore())
	dest.dest.props.SupportedManifestMIMETypes = []string{imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageIndex}
	res := mustCopy(t, dest, src, nil)
	if res.MIMEType != imgspecv1.MediaTypeImageManifest || !res.DigestChanged {
		t.Fatalf("result %+v", res)
	}
	m := parse(t, res.Manifest)
	if m.Config.Digest != img.configDigest() || m.Config.MediaType != imgspecv1.MediaTypeImageConfig {
		t.Errorf("config %+v, want digest %s unchanged", m.Config, img.configDigest())
	}
	wantTypes := []string{imgspecv1.MediaTypeImageLayerGzip, imgspecv1.MediaTypeImageLayer}
	for i, l := range m.Layers {
		if l.Digest != img.layers[i].digest() || l.MediaType != wantTypes[i] {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
	checkBlobsPresent(t, dest.store, m)
	// The layers (not the config, which is checked side by side with them) may be substituted.
	got := dest.lastDest().reuseOpts
	substitutable := 0
	for _, o := range got {
		if o.CanSubstitute {
			substitutable++
		}
		if o.SourceReference != src {
			t.Errorf("reuse options %+v: want the source reference", o)
		}
	}
	if substitutable != len(m.Layers) {
		t.Errorf("reuse options %+v: want CanSubstitute for each layer of a converted manifest", got)
	}
}

func TestCopyManifestFallback(t *testing.T) {
	t.Parallel()
	src, img := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 10<<10, "gzip"))
	dest := newFakeRef("dest", newMemStore())
	dest.dest.reject = map[string]bool{manifest.DockerV2Schema2MediaType: true}
	res := mustCopy(t, dest, src, nil)
	if res.MIMEType != imgspecv1.MediaTypeImageManifest {
		t.Errorf("written %s, want OCI after rejection", res.MIMEType)
	}
	if got := dest.lastDest().manifests; len(got) != 2 || got[0] != manifest.DockerV2Schema2MediaType {
		t.Errorf("PutManifest calls %v", got)
	}
	if parse(t, res.Manifest).Config.Digest != img.configDigest() {
		t.Errorf("config digest changed")
	}
}

func TestCopyAllManifestTypesRejected(t *testing.T) {
	t.Parallel()
	src, _ := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 10<<10, "gzip"))
	dest := newFakeRef("dest", newMemStore())
	dest.dest.reject = map[string]bool{manifest.DockerV2Schema2MediaType: true, imgspecv1.MediaTypeImageManifest: true}
	err := expectFailure(t, dest, src, nil)
	var attempts *ManifestAttemptsError
	var rejected types.ManifestTypeRejectedError
	if !errors.As(err, &attempts) || len(attempts.attempts) != 2 || !errors.As(err, &rejected) {
		t.Fatalf("error %v: want every attempt listed", err)
	}
	for _, want := range []string{manifest.DockerV2Schema2MediaType + ": ", imgspecv1.MediaTypeImageManifest + ": ", "copying image fake:src to fake:dest"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCopyPreserveDigests(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(*fakeRef, *Options)
		want  string
	}{
		{"conversion", func(d *fakeRef, _ *Options) {
			d.dest.props.SupportedManifestMIMETypes = []string{imgspecv1.MediaTypeImageManifest}
		}, "would be converted"},
		{"zstd", func(_ *fakeRef, o *Options) { o.DestinationCompression = "zstd" }, "zstd layers need an OCI manifest"},
		{"decompression", func(_ *fakeRef, o *Options) { o.DestinationDecompress = true }, "layer 0 would be decompressed (gzip to uncompressed), so its digest and the manifest's would change"},
		{"decompressing destination", func(d *fakeRef, _ *Options) { d.dest.props.DesiredLayerCompression = types.Decompress }, "layer 0 would be decompressed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, _ := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 10<<10, "gzip"))
			dest := newFakeRef("dest", newMemStore())
			opts := &Options{PreserveDigests: true}
			tc.setup(dest, opts)
			err := expectFailure(t, dest, src, opts)
			if !strings.Contains(err.Error(), "preserving digests") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q", err)
			}
			if n := dest.lastDest().totalPutBlobs(); n != 0 {
				t.Errorf("%d blobs written before the plan failed", n)
			}
		})
	}
}

func TestCopyDecompressAndRecompress(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		srcType    string
		srcComp    string
		opts       Options
		destDecomp bool
		wantComp   string
		wantType   string // written manifest type
		wantLayer  string // written layer media type
	}{
		{"dest decompresses docker layers", manifest.DockerV2Schema2MediaType, "gzip", Options{}, true, "", manifest.DockerV2Schema2MediaType, manifest.DockerV2SchemaLayerMediaTypeUncompressed},
		{"option decompresses oci zstd", imgspecv1.MediaTypeImageManifest, "zstd", Options{DestinationDecompress: true}, false, "", imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageLayer},
		{"gzip to zstd converts schema2 to oci", manifest.DockerV2Schema2MediaType, "gzip", Options{DestinationCompression: "zstd"}, false, "zstd", imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageLayerZstd},
		{"zstd to gzip", imgspecv1.MediaTypeImageManifest, "zstd", Options{DestinationCompression: "gzip"}, false, "gzip", imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageLayerGzip},
		{"compress uncompressed with level", imgspecv1.MediaTypeImageManifest, "", Options{DestinationCompression: "gzip", DestinationCompressionLevel: ptr(1)}, false, "gzip", imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageLayerGzip},
		{"compress uncompressed zstd", imgspecv1.MediaTypeImageManifest, "", Options{DestinationCompression: "zstd", DestinationCompressionLevel: ptr(3)}, false, "zstd", imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageLayerZstd},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			layers := []testLayer{makeLayer(t, 1, 300<<10, tc.srcComp), makeLayer(t, 2, 20<<10, tc.srcComp)}
			src, img := newSingleSource(t, tc.srcType, layers...)
			dest := newFakeRef("dest", newMemStore())
			dest.dest.props.DesiredLayerCompression = map[bool]types.LayerCompression{true: types.Decompress, false: types.PreserveOriginal}[tc.destDecomp]
			cache := newRecordingCache()
			opts := tc.opts
			opts.BlobInfoCache = cache
			res := mustCopy(t, dest, src, &opts)
			m := parse(t, res.Manifest)
			if res.MIMEType != tc.wantType || !res.DigestChanged || m.Config.Digest != img.configDigest() {
				t.Fatalf("result type %s changed=%v config %s", res.MIMEType, res.DigestChanged, m.Config.Digest)
			}
			checkBlobsPresent(t, dest.store, m)
			if n := slices.Index(src.lastSource().getBlobs, img.configDigest()); n < 0 || slices.Contains(src.lastSource().getBlobs[n+1:], img.configDigest()) {
				t.Errorf("config fetched %v", src.lastSource().getBlobs)
			}
			for i, l := range m.Layers {
				b, _ := dest.store.blob(l.Digest)
				raw, comp := decompressBytes(t, b)
				if comp != tc.wantComp || l.MediaType != tc.wantLayer || !bytes.Equal(raw, layers[i].uncompressed) || l.Size != int64(len(b)) {
					t.Errorf("layer %d: %s compression %q size %d, content equal %v", i, l.MediaType, comp, l.Size, bytes.Equal(raw, layers[i].uncompressed))
				}
				if got := cache.uncompressed(l.Digest); got != layers[i].diffID {
					t.Errorf("cache: uncompressed digest of %s is %q, want %s", l.Digest, got, layers[i].diffID)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCopyDiffIDMismatch(t *testing.T) {
	t.Parallel()
	layers := []testLayer{makeLayer(t, 1, 30<<10, "gzip")}
	s := newMemStore()
	badConfig := makeConfig(t, "amd64", []testLayer{makeLayer(t, 9, 10, "")})
	img := putImage(t, s, manifest.DockerV2Schema2MediaType, "amd64", layers, badConfig)
	s.setTop(img.manifest, img.mimeType)
	src := newFakeRef("src", s)
	dest := newFakeRef("dest", newMemStore())
	err := expectFailure(t, dest, src, &Options{DestinationDecompress: true})
	if !errors.Is(err, types.ErrDigestMismatch) || !strings.Contains(err.Error(), string(layers[0].diffID)) ||
		!strings.Contains(err.Error(), "diff_id") || !strings.Contains(err.Error(), string(layers[0].digest())) {
		t.Errorf("error %v: want a diff_id mismatch naming the layer and both digests", err)
	}
	// The config is copied side by side with the layers; the layer must not be stored.
	if n := dest.lastDest().totalPutBlobs() - dest.lastDest().putBlobs[img.configDigest()]; n != 0 {
		t.Errorf("%d layers stored despite the mismatch", n)
	}
}

func TestCopyCorruptedSourceBlob(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{{}, {DestinationCompression: "zstd"}, {DestinationDecompress: true}} {
		t.Run(opts.DestinationCompression+map[bool]string{true: "decompress"}[opts.DestinationDecompress], func(t *testing.T) {
			t.Parallel()
			layer := makeLayer(t, 1, 60<<10, "gzip")
			src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
			src.src.corrupt = map[digest.Digest]bool{layer.digest(): true}
			dest := newFakeRef("dest", newMemStore())
			err := expectFailure(t, dest, src, &opts)
			if !errors.Is(err, types.ErrDigestMismatch) || !strings.Contains(err.Error(), "copying blob "+string(layer.digest())) {
				t.Errorf("error %v", err)
			}
		})
	}
}

// TestCopyTellsDestinationWhatItVerified checks PutBlobOptions.Verified: set for blobs passed
// through with their source digest (the engine checks them), unset for blobs the engine
// rewrites (the destination computes their digest).
func TestCopyTellsDestinationWhatItVerified(t *testing.T) {
	t.Parallel()
	kept, compressed := makeLayer(t, 1, 20<<10, "gzip"), makeLayer(t, 2, 20<<10, "")
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, kept, compressed)
	dest := newFakeRef("dest", newMemStore())
	res := mustCopy(t, dest, src, &Options{DestinationCompression: "gzip"})
	d := dest.lastDest()
	m := parse(t, res.Manifest)
	if !d.verified[kept.digest()] || !d.verified[m.Config.Digest] {
		t.Errorf("kept layer and config not marked verified: %v", d.verified)
	}
	if newDigest := m.Layers[1].Digest; newDigest == compressed.digest() || d.verified[newDigest] {
		t.Errorf("compressed layer %s marked verified: %v", newDigest, d.verified)
	}
}

func TestCopySourceReadErrorBlamesSource(t *testing.T) {
	t.Parallel()
	layer := makeLayer(t, 1, 60<<10, "gzip")
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
	boom := errors.New("connection reset")
	src.src.readErr = map[digest.Digest]error{layer.digest(): boom}
	dest := newFakeRef("dest", newMemStore())
	err := expectFailure(t, dest, src, &Options{DestinationCompression: "zstd"})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "reading from source fake:src") || strings.Contains(err.Error(), "writing to") {
		t.Errorf("error %v: want it blamed on the source", err)
	}
}

func TestCopyCancelMidLayer(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{{}, {DestinationCompression: "zstd"}} {
		t.Run(opts.DestinationCompression, func(t *testing.T) {
			t.Parallel()
			layers := []testLayer{makeLayer(t, 1, 200<<10, "gzip"), makeLayer(t, 2, 20<<10, "gzip")}
			src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layers...)
			src.src.block = layers[0].digest()
			src.src.started = make(chan struct{})
			dest := newFakeRef("dest", newMemStore())
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-src.src.started
				cancel()
			}()
			_, err := Image(ctx, dest, src, &opts)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
			d := dest.lastDest()
			if d.committed || len(d.manifests) != 0 || !d.closed {
				t.Errorf("committed=%v manifests=%v closed=%v", d.committed, d.manifests, d.closed)
			}
			if _, ok := d.staged[layers[0].digest()]; ok {
				t.Errorf("cancelled layer stored")
			}
		})
	}
}

func TestCopyReuseSecondCopyTransfersNothing(t *testing.T) {
	t.Parallel()
	src, _ := newSingleSource(t, manifest.DockerV2Schema2MediaType, makeLayer(t, 1, 50<<10, "gzip"), makeLayer(t, 2, 10<<10, "gzip"))
	dest := newFakeRef("dest", newMemStore())
	var mu sync.Mutex
	kinds := map[ProgressEventKind]int{}
	opts := &Options{Progress: func(e ProgressEvent) { mu.Lock(); kinds[e.Kind]++; mu.Unlock() }}
	first := mustCopy(t, dest, src, opts)
	if first.BlobsCopied != 3 || kinds[EventBlobStarted] != 3 || kinds[EventBlobDone] != 3 || kinds[EventManifestWritten] != 1 || kinds[EventBlobProgress] == 0 {
		t.Fatalf("first copy %+v, events %v", first, kinds)
	}
	second := mustCopy(t, dest, src, opts)
	if d := dest.lastDest(); d.putBytes != 0 || d.totalPutBlobs() != 0 {
		t.Errorf("second copy transferred %d bytes in %d blobs", d.putBytes, d.totalPutBlobs())
	}
	if second.BlobsReused != 3 || second.BlobsCopied != 0 || second.BytesCopied != 0 || second.BytesReused != first.BytesCopied {
		t.Errorf("second copy stats %+v (first %+v)", second, first)
	}
	if kinds[EventBlobReused] != 3 || second.ManifestDigest != first.ManifestDigest {
		t.Errorf("events %v", kinds)
	}
}

func TestCopyMountEvent(t *testing.T) {
	t.Parallel()
	layer := makeLayer(t, 1, 10<<10, "gzip")
	src, _ := newSingleSource(t, manifest.DockerV2Schema2MediaType, layer)
	dest := newFakeRef("dest", newMemStore())
	dest.dest.mounts = map[digest.Digest]string{layer.digest(): "other/repo"}
	var mounted []ProgressEvent
	var mu sync.Mutex
	var report bytes.Buffer
	mustCopy(t, dest, src, &Options{ReportWriter: &report, Progress: func(e ProgressEvent) {
		if e.Kind == EventBlobMounted {
			mu.Lock()
			mounted = append(mounted, e)
			mu.Unlock()
		}
	}})
	if len(mounted) != 1 || mounted[0].MountedFrom != "other/repo" || mounted[0].Digest != layer.digest() {
		t.Errorf("mount events %+v", mounted)
	}
	if !strings.Contains(report.String(), "skipped: mounted from other/repo") {
		t.Errorf("report %s", report.String())
	}
}

func TestCopyDedupIdenticalLayers(t *testing.T) {
	t.Parallel()
	same := makeLayer(t, 1, 100<<10, "gzip")
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, same, makeLayer(t, 2, 10<<10, "gzip"), same, same)
	dest := newFakeRef("dest", newMemStore())
	res := mustCopy(t, dest, src, &Options{DestinationCompression: "zstd"})
	d := dest.lastDest()
	if d.totalPutBlobs() != 3 { // two distinct layers + config
		t.Errorf("PutBlob called %d times: %v", d.totalPutBlobs(), d.putBlobs)
	}
	m := parse(t, res.Manifest)
	if m.Layers[0].Digest != m.Layers[2].Digest || m.Layers[0].Digest != m.Layers[3].Digest {
		t.Errorf("identical layers written differently: %v", layerDigests(m))
	}
}

func TestCopySerialWhenNotConcurrent(t *testing.T) {
	t.Parallel()
	layers := []testLayer{makeLayer(t, 1, 30<<10, "gzip"), makeLayer(t, 2, 30<<10, "gzip"), makeLayer(t, 3, 30<<10, "gzip")}
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layers...)
	src.src.concurrent = false
	dest := newFakeRef("dest", newMemStore())
	mustCopy(t, dest, src, nil)
	if m := dest.lastDest().maxFlight; m != 1 {
		t.Errorf("%d concurrent PutBlob calls on a non-concurrent source", m)
	}
}

// TestCopyConcurrentManifests checks that the instances of an index are written side by side
// to a destination whose properties say ConcurrentManifests (the three instance manifests are
// all in PutManifest before any returns), and one at a time to any other.
func TestCopyConcurrentManifests(t *testing.T) {
	t.Parallel()
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			t.Parallel()
			src, _, _ := newIndexSource(t, imgspecv1.MediaTypeImageIndex, "amd64", "arm64", "s390x")
			dest := newFakeRef("dest", newMemStore())
			dest.dest.props.ConcurrentManifests = concurrent
			if concurrent {
				var arrived sync.WaitGroup
				arrived.Add(3)
				all := make(chan struct{})
				go func() { arrived.Wait(); close(all) }()
				dest.dest.instanceGate = func() error {
					arrived.Done()
					select {
					case <-all:
						return nil
					case <-time.After(10 * time.Second):
						return errors.New("the other instance manifests did not come while this one was being written")
					}
				}
			}
			mustCopy(t, dest, src, &Options{MultiArch: MultiArchAll})
			d := dest.lastDest()
			if want := map[bool]int{false: 1, true: 3}[concurrent]; d.maxManifestFlight != want {
				t.Errorf("%d PutManifest calls at once, want %d", d.maxManifestFlight, want)
			}
		})
	}
}

// TestCopyConfigTakesNoSlot copies an image with one transfer slot whose layer cannot finish
// before the config is uploaded: the layer's GetBlob (in its slot) waits for the config's
// PutBlob, and the config's TryReusingBlob waits for the layer's GetBlob to start. With the
// config in need of a slot, one of them would wait for the other for good.
func TestCopyConfigTakesNoSlot(t *testing.T) {
	t.Parallel()
	src, img := newSingleSource(t, imgspecv1.MediaTypeImageManifest, makeLayer(t, 1, 40<<10, "gzip"))
	dest := newFakeRef("dest", newMemStore())
	layerStarted, configPut := make(chan struct{}), make(chan struct{})
	var startOnce, putOnce sync.Once
	wait := func(ctx context.Context, ch chan struct{}, what string) error {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New(what)
		}
	}
	src.src.gate = func(ctx context.Context, d digest.Digest) error {
		if d == img.configDigest() {
			return nil
		}
		startOnce.Do(func() { close(layerStarted) })
		return wait(ctx, configPut, "the config was not uploaded while the layer held the slot")
	}
	dest.dest.reuseGate = func(info types.BlobInfo) error {
		if info.Digest != img.configDigest() {
			return nil
		}
		return wait(context.Background(), layerStarted, "the layer did not start while the config was being checked")
	}
	dest.dest.onPut = func(info types.BlobInfo) {
		if info.Digest == img.configDigest() {
			putOnce.Do(func() { close(configPut) })
		}
	}
	mustCopy(t, dest, src, &Options{ImageParallelCopies: 1})
}

func TestCopyMultiArch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		opts        Options
		destTypes   []string
		preferOne   bool
		wantArchs   []string // instances in the written index; nil: a single image
		wantSingle  string   // arch of the single image written
		wantChanged bool
		wantType    string // written index type, when not the source's
	}{
		{name: "default copies all", wantArchs: []string{"amd64", "arm64", "s390x"}},
		{name: "all into single-preferring dest", opts: Options{MultiArch: MultiArchAll}, preferOne: true, wantArchs: []string{"amd64", "arm64", "s390x"}},
		{name: "default into single-preferring dest picks system", opts: Options{SourceCtx: &types.SystemContext{ArchitectureChoice: "arm64", OSChoice: "linux"}}, preferOne: true, wantSingle: "arm64"},
		{name: "system with override", opts: Options{MultiArch: MultiArchSystem, DestinationCtx: &types.SystemContext{ArchitectureChoice: "s390x", OSChoice: "linux"}}, wantSingle: "s390x"},
		{name: "subset", opts: Options{Platforms: []types.Platform{{OS: "linux", Architecture: "s390x"}, {OS: "linux", Architecture: "amd64"}}}, wantArchs: []string{"amd64", "s390x"}, wantChanged: true},
		{name: "converted to OCI index", destTypes: []string{imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageIndex}, wantArchs: []string{"amd64", "arm64", "s390x"}, wantChanged: true, wantType: imgspecv1.MediaTypeImageIndex},
		{name: "zstd instances make an OCI index", opts: Options{DestinationCompression: "zstd"}, wantArchs: []string{"amd64", "arm64", "s390x"}, wantChanged: true, wantType: imgspecv1.MediaTypeImageIndex},
		{name: "forced schema2 keeps the list", opts: Options{ForceManifestMIMEType: manifest.DockerV2Schema2MediaType}, wantArchs: []string{"amd64", "arm64", "s390x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, imgs, idx := newIndexSource(t, manifest.DockerV2ListMediaType, "amd64", "arm64", "s390x")
			dest := newFakeRef("dest", newMemStore())
			dest.dest.props.SupportedManifestMIMETypes = tc.destTypes
			dest.dest.props.PrefersSinglePlatform = tc.preferOne
			res := mustCopy(t, dest, src, &tc.opts)
			d := dest.lastDest()
			if tc.wantSingle != "" {
				checkSingleArch(t, res, imgs, tc.wantSingle)
				return
			}
			m := parse(t, res.Manifest)
			var archs []string
			for _, e := range m.Manifests {
				archs = append(archs, e.Platform.Architecture)
				st, ok := dest.store.manifests[e.Digest]
				if !ok {
					t.Errorf("instance %s not written", e.Digest)
					continue
				}
				checkBlobsPresent(t, dest.store, parse(t, st.blob))
			}
			if strings.Join(archs, ",") != strings.Join(tc.wantArchs, ",") || res.DigestChanged != tc.wantChanged || len(res.Instances) != len(tc.wantArchs) {
				t.Errorf("archs %v changed=%v instances=%d", archs, res.DigestChanged, len(res.Instances))
			}
			if !tc.wantChanged && !bytes.Equal(res.Manifest, idx) {
				t.Errorf("index not byte-exact")
			}
			if want := cmp.Or(tc.wantType, manifest.DockerV2ListMediaType); res.MIMEType != want || m.MediaType != want {
				t.Errorf("index written as %s (%s), want %s", res.MIMEType, m.MediaType, want)
			}
			shared := imgs[0].layers[0].digest()
			if tc.destTypes == nil && tc.opts.DestinationCompression == "" && d.putBlobs[shared] != 1 {
				t.Errorf("shared layer uploaded %d times", d.putBlobs[shared])
			}
		})
	}
}

func checkSingleArch(t *testing.T, res *Result, imgs []testImage, arch string) {
	t.Helper()
	for _, img := range imgs {
		var cfg struct{ Architecture string }
		json.Unmarshal(img.config, &cfg)
		if cfg.Architecture != arch {
			continue
		}
		if !bytes.Equal(res.Manifest, img.manifest) || res.DigestChanged || len(res.Instances) != 1 || res.Instances[0].Platform.Architecture != arch {
			t.Errorf("written %s, want the %s image %s unchanged", res.ManifestDigest, arch, img.digest)
		}
		return
	}
	t.Fatalf("no %s image", arch)
}

func TestCopyIndexOnly(t *testing.T) {
	t.Parallel()
	src, _, idx := newIndexSource(t, imgspecv1.MediaTypeImageIndex, "amd64", "arm64")
	dest := newFakeRef("dest", newMemStore())
	res := mustCopy(t, dest, src, &Options{MultiArch: MultiArchIndexOnly})
	d := dest.lastDest()
	if !bytes.Equal(res.Manifest, idx) || d.totalPutBlobs() != 0 || len(d.manifests) != 1 {
		t.Errorf("index-only copy wrote %d blobs and manifests %v", d.totalPutBlobs(), d.manifests)
	}
	for _, o := range []Options{{DestinationCompression: "zstd"}, {DestinationDecompress: true}, {ForceManifestMIMEType: manifest.DockerV2Schema2MediaType}} {
		o.MultiArch = MultiArchIndexOnly
		dest := newFakeRef("dest", newMemStore())
		if err := expectFailure(t, dest, src, &o); types.Classify(err) != types.ClassUsage || !strings.Contains(err.Error(), "its images are not copied") {
			t.Errorf("index only with %+v: %v, want a usage error", o, err)
		}
	}
}

// newNestedIndexSource returns a source whose index lists one index of an amd64 and an
// arm64 image, with those images, the inner index's digest and the outer index.
func newNestedIndexSource(t *testing.T) (*fakeRef, []testImage, digest.Digest, []byte) {
	t.Helper()
	src, imgs, inner := newIndexSource(t, imgspecv1.MediaTypeImageIndex, "amd64", "arm64")
	innerDigest := src.store.addInstance(inner, imgspecv1.MediaTypeImageIndex)
	outer := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": imgspecv1.MediaTypeImageIndex, "manifests": []map[string]any{
		{"mediaType": imgspecv1.MediaTypeImageIndex, "size": len(inner), "digest": innerDigest},
	}})
	src.store.setTop(outer, imgspecv1.MediaTypeImageIndex)
	return src, imgs, innerDigest, outer
}

func TestCopyNestedIndex(t *testing.T) {
	t.Parallel()
	src, imgs, innerDigest, outer := newNestedIndexSource(t)
	dest := newFakeRef("dest", newMemStore())
	res := mustCopy(t, dest, src, nil)
	if !bytes.Equal(res.Manifest, outer) || len(res.Instances) != 3 {
		t.Fatalf("nested copy result %+v", res)
	}
	for _, d := range []digest.Digest{innerDigest, imgs[0].digest, imgs[1].digest} {
		if _, ok := dest.store.manifests[d]; !ok {
			t.Errorf("instance %s missing", d)
		}
	}
}

// TestCopyOnePlatformFromNestedIndex: the running platform's image is found inside a nested
// index (entries without a platform); --platform, which keeps the index, cannot split a
// nested index and says so as a usage error rather than "no image for the platform".
func TestCopyOnePlatformFromNestedIndex(t *testing.T) {
	t.Parallel()
	src, imgs, _, _ := newNestedIndexSource(t)
	arm := &types.SystemContext{OSChoice: "linux", ArchitectureChoice: "arm64"}
	res := mustCopy(t, newFakeRef("dest", newMemStore()), src, &Options{MultiArch: MultiArchSystem, SourceCtx: arm})
	checkSingleArch(t, res, imgs, "arm64")

	p, err := manifest.ParsePlatform("linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	err = expectFailure(t, newFakeRef("dest", newMemStore()), src, &Options{Platforms: []types.Platform{p}})
	if types.Classify(err) != types.ClassUsage || !strings.Contains(err.Error(), imgs[1].digest.String()) {
		t.Errorf("--platform through a nested index: %v; want a usage error naming %s", err, imgs[1].digest)
	}
}

func TestCopyIndexWithCorruptInstanceManifest(t *testing.T) {
	t.Parallel()
	src, imgs, _ := newIndexSource(t, imgspecv1.MediaTypeImageIndex, "amd64")
	src.store.manifests[imgs[0].digest] = storedManifest{append(imgs[0].manifest, ' '), imgs[0].mimeType}
	dest := newFakeRef("dest", newMemStore())
	err := expectFailure(t, dest, src, nil)
	if !errors.Is(err, types.ErrDigestMismatch) {
		t.Errorf("error %v", err)
	}
}

func TestCopyCloseErrorAdded(t *testing.T) {
	t.Parallel()
	layer := makeLayer(t, 1, 10<<10, "gzip")
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
	closeErr := errors.New("close failed")
	src.src.closeErr = closeErr
	src.src.corrupt = map[digest.Digest]bool{layer.digest(): true}
	dest := newFakeRef("dest", newMemStore())
	err := expectFailure(t, dest, src, nil)
	if !errors.Is(err, types.ErrDigestMismatch) || !errors.Is(err, closeErr) || !strings.HasPrefix(err.Error(), "copying image") {
		t.Errorf("error %v: want the mismatch first and the close error added", err)
	}
}

func TestCopyInvalidOptions(t *testing.T) {
	t.Parallel()
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, makeLayer(t, 1, 10, ""))
	dest := newFakeRef("dest", newMemStore())
	for _, o := range []*Options{{DestinationCompression: "lz4"}, {DestinationCompression: "gzip", DestinationDecompress: true}, {DestinationCompression: "gzip", DestinationCompressionLevel: ptr(12)},
		{DestinationCompressionLevel: ptr(99)}, {DestinationCompression: "zstd", DestinationCompressionLevel: ptr(23)},
		{DestinationCompression: "zstd", DestinationCompressionLevel: ptr(0)},
		// Only the two single-image types can be written by conversion; an embedder's typo is
		// a usage error, found before either end is opened.
		{ForceManifestMIMEType: "text/plain"}, {ForceManifestMIMEType: "v2s2"}, {ForceManifestMIMEType: imgspecv1.MediaTypeImageIndex},
		{ForceManifestMIMEType: manifest.DockerV2Schema1SignedMediaType},
		// A MultiArch outside its constants, and a platform no image can have.
		{MultiArch: MultiArch(42)}, {MultiArch: -1},
		// Artifact types to copy, without asking for referrers.
		{ReferrersTypes: []string{"application/vnd.dev.cosign.artifact.sig.v1+json"}}, {Platforms: []types.Platform{{}}}, {Platforms: []types.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux"}}}} {
		if _, err := Image(context.Background(), dest, src, o); types.Classify(err) != types.ClassUsage || !errors.Is(err, types.ErrUsage) {
			t.Errorf("options %+v: error %v, want a usage error", o, err)
		}
	}
}

// TestCopyNilReference: a nil reference, e.g. from a parse whose error was dropped, is a
// usage error, not a panic inside the engine.
func TestCopyNilReference(t *testing.T) {
	t.Parallel()
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, makeLayer(t, 1, 10, ""))
	dest := newFakeRef("dest", newMemStore())
	for _, tc := range []struct {
		name      string
		dest, src types.ImageReference
	}{{"nil destination", nil, src}, {"nil source", dest, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Image(context.Background(), tc.dest, tc.src, nil); types.Classify(err) != types.ClassUsage {
				t.Errorf("error %v, want a usage error", err)
			}
			if _, err := RelatedMissing(context.Background(), tc.dest, tc.src, &Options{Referrers: true}); types.Classify(err) != types.ClassUsage {
				t.Errorf("RelatedMissing: error %v, want a usage error", err)
			}
		})
	}
}

// recordingCache is a minimal thread-safe BlobInfoCache for assertions.
type recordingCache struct {
	mu   sync.Mutex
	unc  map[digest.Digest]digest.Digest
	comp map[digest.Digest]string
}

var _ types.BlobInfoCache = (*recordingCache)(nil)

func newRecordingCache() *recordingCache {
	return &recordingCache{unc: map[digest.Digest]digest.Digest{}, comp: map[digest.Digest]string{}}
}

func (c *recordingCache) RecordDigestUncompressedPair(any, unc digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unc[any] = unc
}

func (c *recordingCache) RecordDigestCompressorName(d digest.Digest, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.comp[d] = name
}

func (c *recordingCache) UncompressedDigest(d digest.Digest) digest.Digest { return c.uncompressed(d) }

func (c *recordingCache) uncompressed(d digest.Digest) digest.Digest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unc[d]
}

func TestCopySchema1(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		destTypes []string
		unusable  []string
		reject    string
		decomp    bool
		wantType  string
	}{
		{name: "kept byte-exact", wantType: manifest.DockerV2Schema1MediaType},
		{name: "unusable at the destination: converted to oci", unusable: []string{manifest.DockerV2Schema1MediaType}, wantType: imgspecv1.MediaTypeImageManifest},
		{name: "converted to oci", destTypes: []string{imgspecv1.MediaTypeImageManifest}, wantType: imgspecv1.MediaTypeImageManifest},
		{name: "fallback to schema2 after rejection", reject: manifest.DockerV2Schema1MediaType, wantType: manifest.DockerV2Schema2MediaType},
		{name: "decompressed into docker-archive", destTypes: []string{manifest.DockerV2Schema2MediaType}, decomp: true, wantType: manifest.DockerV2Schema2MediaType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, srcManifest, layers := newSchema1Source(t)
			dest := newFakeRef("dest", newMemStore())
			dest.dest.props.SupportedManifestMIMETypes = tc.destTypes
			dest.dest.props.UnusableManifestMIMETypes = tc.unusable
			dest.dest.reject = map[string]bool{tc.reject: true}
			if tc.decomp {
				dest.dest.props.DesiredLayerCompression = types.Decompress
			}
			res := mustCopy(t, dest, src, nil)
			if res.MIMEType != tc.wantType {
				t.Fatalf("written %s, want %s", res.MIMEType, tc.wantType)
			}
			if tc.wantType == manifest.DockerV2Schema1MediaType {
				if !bytes.Equal(res.Manifest, srcManifest) || res.DigestChanged {
					t.Errorf("schema1 not copied byte-exact")
				}
				return
			}
			m := parse(t, res.Manifest)
			checkBlobsPresent(t, dest.store, m)
			if len(m.Layers) != 2 {
				t.Fatalf("layers %v: want the empty layer dropped", layerDigests(m))
			}
			cfg, _ := dest.store.blob(m.Config.Digest)
			ids, err := manifest.ConfigDiffIDs(cfg)
			if err != nil || len(ids) != 2 || ids[0] != layers[0].diffID || ids[1] != layers[2].diffID {
				t.Errorf("synthesized config diff IDs %v, %v", ids, err)
			}
			if tc.decomp && (m.Layers[0].Digest != layers[0].diffID || m.Layers[0].MediaType != manifest.DockerV2SchemaLayerMediaTypeUncompressed) {
				t.Errorf("layer not decompressed: %+v", m.Layers[0])
			}
		})
	}
}

func (c *recordingCache) RecordKnownLocation(string, types.BICTransportScope, digest.Digest, types.BICLocationReference) {
}

func (c *recordingCache) CandidateLocations(string, types.BICTransportScope, digest.Digest, bool) []types.BICReplacementCandidate {
	return nil
}

func TestCopyReuseSubstitute(t *testing.T) {
	t.Parallel()
	layers := []testLayer{makeLayer(t, 1, 50<<10, "gzip"), makeLayer(t, 2, 10<<10, "gzip")}
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layers...)
	zstdBlob := compressBytes(t, layers[0].uncompressed, "zstd")
	dest := newFakeRef("dest", newMemStore())
	sub := types.BlobInfo{Digest: dest.store.putBlob(zstdBlob), Size: int64(len(zstdBlob)), MediaType: imgspecv1.MediaTypeImageLayerZstd}
	dest.dest.substitutes = map[digest.Digest]types.BlobInfo{layers[0].digest(): sub}
	res := mustCopy(t, dest, src, &Options{DestinationCompression: "zstd"})
	m := parse(t, res.Manifest)
	if m.Layers[0].Digest != sub.Digest || m.Layers[0].MediaType != sub.MediaType || m.Layers[0].Size != sub.Size {
		t.Errorf("layer 0 %+v, want the substitute %+v", m.Layers[0], sub)
	}
	if d := dest.lastDest(); d.putBlobs[sub.Digest] != 0 || res.BlobsReused != 1 {
		t.Errorf("substitute transferred anyway: %v", d.putBlobs)
	}

	// Without a reason to change digests, substitutes are not allowed.
	dest2 := newFakeRef("dest2", newMemStore())
	dest2.dest.substitutes = dest.dest.substitutes
	res2 := mustCopy(t, dest2, src, nil)
	if parse(t, res2.Manifest).Layers[0].Digest != layers[0].digest() || res2.DigestChanged {
		t.Errorf("substituted in a byte-exact copy")
	}
}

// TestCopyLeavesNoGoroutines runs failing and succeeding copies with every transform and
// checks that the engine's goroutines (pipes, compressors, side digests) all ended.
func TestCopyLeavesNoGoroutines(t *testing.T) {
	for _, opts := range []Options{{}, {DestinationCompression: "zstd"}, {DestinationCompression: "gzip"}, {DestinationDecompress: true}} {
		layer := makeLayer(t, 1, 200<<10, "gzip")
		src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer, makeLayer(t, 2, 10<<10, ""))
		Image(context.Background(), newFakeRef("ok", newMemStore()), src, &opts)
		src.src.corrupt = map[digest.Digest]bool{layer.digest(): true}
		Image(context.Background(), newFakeRef("corrupt", newMemStore()), src, &opts)
		src.src.corrupt = nil
		src.src.block, src.src.started = layer.digest(), make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-src.src.started
			cancel()
		}()
		Image(ctx, newFakeRef("cancel", newMemStore()), src, &opts)
		cancel()
	}
	// Compressors run in goroutines of their own libraries (pgzip's block writer).
	if stacks := waitForNoGoroutines("imgcopy/copy.", "klauspost/"); stacks != "" {
		t.Errorf("engine goroutines left after the copies returned:\n%s", stacks)
	}
}

// waitForNoGoroutines returns "" once no goroutine other than the tests' runs code whose
// stack mentions one of the marks, or the stacks of those still running after many tries
// (goroutines that signalled completion may still be returning).
func waitForNoGoroutines(marks ...string) string {
	var stacks string
	for i := 0; i < 10000; i++ {
		if stacks = engineGoroutines(marks); stacks == "" {
			return ""
		}
		runtime.Gosched()
	}
	return stacks
}

// engineGoroutines returns the stacks of goroutines whose stack mentions one of marks, other
// than the tests themselves and the goroutines they start.
func engineGoroutines(marks []string) string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "copy.TestCopy") {
			continue
		}
		for _, m := range marks {
			if strings.Contains(g, m) {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}
