package integrity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	dref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// memImage is an image held in memory: manifests by digest (the top one under "") and blobs.
type memImage struct {
	manifests map[digest.Digest][]byte
	top       []byte
	blobs     map[digest.Digest][]byte
}

type memRef struct{ img *memImage }

var _ types.ImageReference = memRef{}

type memTransport struct{}

var _ types.ImageTransport = memTransport{}

func (memTransport) Name() string { return "mem" }
func (memTransport) ParseReference(string) (types.ImageReference, error) {
	return nil, errors.New("not parseable")
}

func (r memRef) Transport() types.ImageTransport { return memTransport{} }
func (r memRef) StringWithinTransport() string   { return "mem" }
func (r memRef) DockerReference() dref.Named     { return nil }
func (r memRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return memSource{r}, nil
}
func (r memRef) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	return nil, errors.New("read-only")
}

type memSource struct{ r memRef }

var _ types.ImageSource = memSource{}

func (s memSource) Reference() types.ImageReference { return s.r }
func (s memSource) Properties() types.SourceProperties {
	return types.SourceProperties{ConcurrentBlobs: true}
}
func (s memSource) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	if instance == nil {
		return s.r.img.top, "", nil
	}
	if b, ok := s.r.img.manifests[*instance]; ok {
		return b, "", nil
	}
	return nil, "", errors.Wrapf(types.ErrManifestNotFound, "manifest %s", *instance)
}
func (s memSource) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	b, ok := s.r.img.blobs[info.Digest]
	if !ok {
		return nil, -1, errors.Wrapf(types.ErrBlobNotFound, "blob %s", info.Digest)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}
func (s memSource) Close() error { return nil }

func descriptor(mediaType string, b []byte) imgspecv1.Descriptor {
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newImage builds an index of one image with a config, a layer and a foreign layer (URLs, not
// stored), and lets damage change it before it is checked.
func newImage(t *testing.T) (*memImage, imgspecv1.Descriptor, imgspecv1.Descriptor) {
	t.Helper()
	config, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("layer bytes")
	foreign := descriptor(imgspecv1.MediaTypeImageLayerGzip, []byte("elsewhere"))
	foreign.URLs = []string{"https://example.com/layer"}
	m := mustJSON(t, imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: descriptor(imgspecv1.MediaTypeImageConfig, config), Layers: []imgspecv1.Descriptor{descriptor(imgspecv1.MediaTypeImageLayer, layer), foreign}})
	inst := descriptor(imgspecv1.MediaTypeImageManifest, m)
	idx := mustJSON(t, imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{inst}})
	img := &memImage{top: idx, manifests: map[digest.Digest][]byte{inst.Digest: m},
		blobs: map[digest.Digest][]byte{digest.FromBytes(config): config, digest.FromBytes(layer): layer}}
	return img, inst, descriptor(imgspecv1.MediaTypeImageLayer, layer)
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(img *memImage, inst, layer imgspecv1.Descriptor)
		want   string // "" for no problem; else the digest the problem names
		is     error
	}{
		{name: "intact (the foreign layer is not stored here)", damage: func(*memImage, imgspecv1.Descriptor, imgspecv1.Descriptor) {}},
		{name: "instance manifest changed", damage: func(img *memImage, inst, _ imgspecv1.Descriptor) {
			img.manifests[inst.Digest] = append(bytes.Clone(img.manifests[inst.Digest]), ' ')
		}, want: "inst", is: types.ErrDigestMismatch},
		{name: "instance manifest missing", damage: func(img *memImage, inst, _ imgspecv1.Descriptor) {
			delete(img.manifests, inst.Digest)
		}, want: "inst", is: types.ErrManifestNotFound},
		{name: "layer truncated", damage: func(img *memImage, _, layer imgspecv1.Descriptor) {
			img.blobs[layer.Digest] = img.blobs[layer.Digest][:3]
		}, want: "layer", is: types.ErrDigestMismatch},
		{name: "index nests into itself", damage: func(img *memImage, inst, _ imgspecv1.Descriptor) {
			img.manifests[inst.Digest] = img.top // an index whose instance is the same index bytes
		}, want: "inst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, inst, layer := newImage(t)
			tc.damage(img, inst, layer)
			rep, err := Check(context.Background(), memRef{img}, nil, Options{})
			if tc.want == "" {
				if err != nil || rep.Blobs != 2 || rep.Manifests != 2 || rep.Images != 1 {
					t.Fatalf("intact image: %+v, %v", rep, err)
				}
				return
			}
			want := map[string]digest.Digest{"inst": inst.Digest, "layer": layer.Digest}[tc.want]
			var ierr *Error
			if !errors.As(err, &ierr) || types.Classify(err) != types.ClassVerification || !strings.Contains(err.Error(), want.String()) {
				t.Fatalf("want a verification error naming %s, got %v", want, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v does not wrap %v", err, tc.is)
			}
		})
	}
}

// TestCheckStopsOnCancel: a cancelled check returns the context's error, not problems.
func TestCheckStopsOnCancel(t *testing.T) {
	img, _, _ := newImage(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Check(ctx, memRef{img}, nil, Options{})
	var ierr *Error
	if errors.As(err, &ierr) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled check: %v, want context.Canceled and no problems", err)
	}
}

// TestCheckStopsMidBlob: a check cancelled while it reads a blob stops reading it, even from
// a source that does not watch the context itself (a local file), and returns the
// context's error instead of finishing the check.
func TestCheckStopsMidBlob(t *testing.T) {
	img, _, layer := newImage(t)
	big := bytes.Repeat([]byte("layer bytes "), 1<<18) // several of the check's reads
	img.blobs[digest.FromBytes(big)] = big
	delete(img.blobs, layer.Digest)
	var m imgspecv1.Manifest
	for d, b := range img.manifests {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m.Layers = []imgspecv1.Descriptor{descriptor(imgspecv1.MediaTypeImageLayer, big)}
		delete(img.manifests, d)
		nb := mustJSON(t, m)
		img.manifests[digest.FromBytes(nb)] = nb
		img.top = mustJSON(t, imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
			Manifests: []imgspecv1.Descriptor{descriptor(imgspecv1.MediaTypeImageManifest, nb)}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := Check(ctx, cancellingRef{memRef{img}, digest.FromBytes(big), cancel}, nil, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("check cancelled mid-blob: %+v, %v; want context.Canceled", rep, err)
	}
}

// cancellingRef serves blob as a stream that cancels the check at its first read.
type cancellingRef struct {
	memRef
	blob   digest.Digest
	cancel func()
}

func (r cancellingRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return cancellingSource{memSource{r.memRef}, r}, nil
}

type cancellingSource struct {
	memSource
	r cancellingRef
}

func (s cancellingSource) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	rc, n, err := s.memSource.GetBlob(ctx, info, opts)
	if err == nil && info.Digest == s.r.blob {
		rc = io.NopCloser(&cancelOnRead{r: rc, cancel: s.r.cancel})
	}
	return rc, n, err
}

type cancelOnRead struct {
	r      io.Reader
	cancel func()
}

func (c *cancelOnRead) Read(p []byte) (int, error) {
	c.cancel()
	return c.r.Read(p)
}

// memRelated holds what travels with a memImage: referrers by subject and tagged manifests.
type memRelated struct {
	referrers map[digest.Digest][]imgspecv1.Descriptor
	tagged    map[string][]byte
}

// relatedRef is a memRef whose source can also read referrers and digest tags.
type relatedRef struct {
	memRef
	rel *memRelated
}

func (r relatedRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return relatedSource{memSource{r.memRef}, r.rel}, nil
}

func (r relatedRef) ListTags(ctx context.Context, sys *types.SystemContext) ([]string, error) {
	tags := []string{"latest"}
	for t := range r.rel.tagged {
		tags = append(tags, t)
	}
	return tags, nil
}

type relatedSource struct {
	memSource
	rel *memRelated
}

var (
	_ types.ReferrersLister = relatedSource{}
	_ types.RelatedSource   = relatedSource{}
)

func (s relatedSource) ListReferrers(ctx context.Context, subject digest.Digest) ([]imgspecv1.Descriptor, error) {
	return s.rel.referrers[subject], nil
}

func (s relatedSource) GetRelatedManifest(ctx context.Context, ref string) ([]byte, string, error) {
	if b, ok := s.rel.tagged[ref]; ok {
		return b, "", nil
	}
	if b, ok := s.r.img.manifests[digest.Digest(ref)]; ok {
		return b, "", nil
	}
	return nil, "", errors.Wrapf(types.ErrManifestNotFound, "manifest %s", ref)
}

// addArtifact stores an artifact manifest with one blob, referring to subject when it is set,
// and returns the manifest's descriptor and the blob's.
func addArtifact(t *testing.T, img *memImage, subject *imgspecv1.Descriptor, content string) (imgspecv1.Descriptor, imgspecv1.Descriptor) {
	t.Helper()
	blob := []byte(content)
	layer := descriptor("application/octet-stream", blob)
	m := mustJSON(t, imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		ArtifactType: "application/example", Config: imgspecv1.DescriptorEmptyJSON, Layers: []imgspecv1.Descriptor{layer}, Subject: subject})
	desc := descriptor(imgspecv1.MediaTypeImageManifest, m)
	img.manifests[desc.Digest] = m
	img.blobs[layer.Digest] = blob
	img.blobs[imgspecv1.DescriptorEmptyJSON.Digest] = imgspecv1.DescriptorEmptyJSON.Data
	return desc, layer
}

// TestCheckRelated: the artifacts that refer to an image, what refers to those, and the
// manifests its digest tags name are checked with it, and damage to any of them is a problem.
func TestCheckRelated(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(img *memImage, rel *memRelated, d map[string]imgspecv1.Descriptor)
		want   string // "" for intact, else the key in d of the digest the problem names
	}{
		{name: "intact", damage: func(*memImage, *memRelated, map[string]imgspecv1.Descriptor) {}},
		{name: "SBOM blob changed", damage: func(img *memImage, _ *memRelated, d map[string]imgspecv1.Descriptor) {
			img.blobs[d["sbom-blob"].Digest] = []byte("tampered")
		}, want: "sbom-blob"},
		{name: "signature of the SBOM missing", damage: func(img *memImage, _ *memRelated, d map[string]imgspecv1.Descriptor) {
			delete(img.manifests, d["sbom-sig"].Digest)
		}, want: "sbom-sig"},
		{name: "blob of the .sig tag missing", damage: func(img *memImage, _ *memRelated, d map[string]imgspecv1.Descriptor) {
			delete(img.blobs, d["tag-blob"].Digest)
		}, want: "tag-blob"},
		{name: "referrer of an instance changed", damage: func(img *memImage, _ *memRelated, d map[string]imgspecv1.Descriptor) {
			img.blobs[d["inst-att-blob"].Digest] = []byte("tampered")
		}, want: "inst-att-blob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, inst, _ := newImage(t)
			top := descriptor(imgspecv1.MediaTypeImageIndex, img.top)
			d := map[string]imgspecv1.Descriptor{}
			d["sbom"], d["sbom-blob"] = addArtifact(t, img, &top, "sbom")
			sbom := d["sbom"]
			d["sbom-sig"], _ = addArtifact(t, img, &sbom, "signature of the sbom")
			d["inst-att"], d["inst-att-blob"] = addArtifact(t, img, &inst, "attestation of the instance")
			tagged, tagBlob := addArtifact(t, img, nil, "cosign signature")
			d["tag-blob"] = tagBlob
			rel := &memRelated{
				referrers: map[digest.Digest][]imgspecv1.Descriptor{top.Digest: {d["sbom"]}, d["sbom"].Digest: {d["sbom-sig"]}, inst.Digest: {d["inst-att"]}},
				tagged:    map[string][]byte{manifest.DigestTagPrefix(top.Digest) + "sig": img.manifests[tagged.Digest]},
			}
			tc.damage(img, rel, d)
			rep, err := Check(context.Background(), relatedRef{memRef{img}, rel}, nil, Options{})
			if tc.want == "" {
				if err != nil || rep.Related != 4 || rep.Manifests != 6 {
					t.Fatalf("intact image and artifacts: %+v, %v", rep, err)
				}
				return
			}
			var ierr *Error
			if !errors.As(err, &ierr) || types.Classify(err) != types.ClassVerification || !strings.Contains(err.Error(), d[tc.want].Digest.String()) {
				t.Fatalf("want a verification error naming %s (%s), got %v", tc.want, d[tc.want].Digest, err)
			}
		})
	}
}

// listerRef is a store whose listing fails with err.
type listerRef struct {
	memRef
	err error
}

func (r listerRef) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	return nil, r.err
}

// TestCheckDamagedStore: a store that cannot be listed because its content is damaged is a
// problem found (exit code 6); one that cannot be read at all is an error of the check.
func TestCheckDamagedStore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		problem bool
	}{
		{name: "truncated archive", err: errors.Wrap(io.ErrUnexpectedEOF, `archive truncated in member "blobs/sha256/ab"`), problem: true},
		{name: "duplicate member", err: errors.Wrap(types.ErrDuplicateEntry, "indexing"), problem: true},
		{name: "malformed index.json", err: errors.Wrap(types.ErrInvalidLayout, "parsing index.json"), problem: true},
		{name: "no such store", err: errors.Wrap(types.ErrManifestNotFound, "layout directory does not exist")},
		{name: "permission denied", err: &fs.PathError{Op: "open", Path: "bundle.tar", Err: syscall.EACCES}},
		{name: "registry refused", err: errors.Wrap(types.ErrUnauthorized, "listing tags")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, _, _ := newImage(t)
			rep, err := Check(context.Background(), listerRef{memRef{img}, tc.err}, nil, Options{})
			var ierr *Error
			if got := errors.As(err, &ierr); got != tc.problem {
				t.Fatalf("reported as a problem: %v, want %v (%v)", got, tc.problem, err)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap %v", err, tc.err)
			}
			if tc.problem && (rep == nil || len(rep.Problems) != 1 || types.Classify(err) != types.ClassVerification) {
				t.Errorf("report %+v, class %v", rep, types.Classify(err))
			}
		})
	}
}

// TestCheckNilReference: a nil reference is a usage error, not a panic.
func TestCheckNilReference(t *testing.T) {
	t.Parallel()
	if _, err := Check(context.Background(), nil, nil, Options{}); !errors.Is(err, types.ErrUsage) {
		t.Errorf("error %v, want a usage error", err)
	}
}

// storeRef lists images as a store does.
type storeRef struct {
	memRef
	images []types.ListedImage
}

func (r storeRef) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	return r.images, nil
}

// TestCheckSeparateBlobs lists the same image twice, as two copies (a dir: store keeps each
// image's blobs in its own directory) of which the second has a damaged layer: the damage
// is found although the first copy of that digest was intact. Images of a store that keeps
// each blob once (a layout) share the check.
func TestCheckSeparateBlobs(t *testing.T) {
	t.Parallel()
	for _, separate := range []bool{true, false} {
		intact, _, layer := newImage(t)
		damaged, _, _ := newImage(t)
		damaged.blobs[layer.Digest] = []byte("layer bytez")
		store := storeRef{memRef: memRef{intact}, images: []types.ListedImage{
			{Ref: memRef{intact}, SeparateBlobs: separate},
			{Ref: memRef{damaged}, SeparateBlobs: separate},
		}}
		rep, err := Check(context.Background(), store, nil, Options{})
		if !separate {
			if err != nil || rep.Blobs != 2 {
				t.Errorf("shared blobs: %+v, %v; want each blob checked once", rep, err)
			}
			continue
		}
		if !errors.Is(err, types.ErrDigestMismatch) || !strings.Contains(err.Error(), layer.Digest.String()) || rep.Blobs != 3 {
			t.Errorf("separate blobs: %+v, %v; want the second copy's layer found damaged", rep, err)
		}
	}
}
