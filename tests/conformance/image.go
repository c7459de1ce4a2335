package conformance

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// Docker media types used by the test images. They are spelled out here so that the suite
// depends only on types/ (the manifest package defines the same strings).
const (
	dockerSchema2MediaType   = "application/vnd.docker.distribution.manifest.v2+json"
	dockerListMediaType      = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfigMediaType    = "application/vnd.docker.container.image.v1+json"
	dockerLayerGzipMediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayerTarMediaType  = "application/vnd.docker.image.rootfs.diff.tar"
)

// fixedTime makes every generated image byte-for-byte reproducible.
var fixedTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Blob is one blob of a test image with its content.
type Blob struct {
	Digest    digest.Digest
	MediaType string
	Data      []byte
}

func newBlob(mediaType string, data []byte) Blob {
	return Blob{Digest: digest.FromBytes(data), MediaType: mediaType, Data: data}
}

// Image is a complete single-platform test image: config, layers and manifest bytes.
type Image struct {
	Config   Blob
	Layers   []Blob
	Manifest []byte
	MIMEType string
	Digest   digest.Digest // of Manifest
	Platform imgspecv1.Platform
}

// Blobs returns the config followed by the layers.
func (img Image) Blobs() []Blob {
	return append([]Blob{img.Config}, img.Layers...)
}

// Index is a multi-platform test image: the index bytes and its instances.
type Index struct {
	Manifest  []byte
	MIMEType  string
	Digest    digest.Digest
	Instances []Image
}

// ImageOptions select what BuildImage produces.
type ImageOptions struct {
	// MIMEType is imgspecv1.MediaTypeImageManifest or the Docker schema2 type.
	MIMEType string
	// Architecture is the config's architecture ("amd64" when empty).
	Architecture string
	// Uncompressed layers (plain tar) instead of gzip.
	Uncompressed bool
	// Layers is the number of layers (2 when zero).
	Layers int
}

// builtLayers caches generated layers: compressing them dominates the suite's run time under
// -race, and they are deterministic.
var builtLayers sync.Map // layerKey -> []byte

type layerKey struct {
	n          int
	compressed bool
}

// layer returns layer n (a tar, gzip-compressed when compressed) and its diff ID.
func layer(n int, compressed bool) ([]byte, digest.Digest, error) {
	tarData, ok := builtLayers.Load(layerKey{n, false})
	if !ok {
		b, err := layerTar(n)
		if err != nil {
			return nil, "", err
		}
		tarData, _ = builtLayers.LoadOrStore(layerKey{n, false}, b)
	}
	diffID := digest.FromBytes(tarData.([]byte))
	if !compressed {
		return tarData.([]byte), diffID, nil
	}
	gz, ok := builtLayers.Load(layerKey{n, true})
	if !ok {
		b, err := gzipBytes(tarData.([]byte))
		if err != nil {
			return nil, "", err
		}
		gz, _ = builtLayers.LoadOrStore(layerKey{n, true}, b)
	}
	return gz.([]byte), diffID, nil
}

// BuildImage builds a small, valid, deterministic image in memory: real tar layers (gzip
// unless opts.Uncompressed), a config whose rootfs.diff_ids match them and a manifest of
// opts.MIMEType. Images built with the same options are identical; layer n is the same in
// every image. Callers must not modify the returned byte slices.
func BuildImage(opts ImageOptions) (Image, error) {
	if opts.Architecture == "" {
		opts.Architecture = "amd64"
	}
	if opts.Layers == 0 {
		opts.Layers = 2
	}
	docker := opts.MIMEType == dockerSchema2MediaType
	if !docker && opts.MIMEType != imgspecv1.MediaTypeImageManifest {
		return Image{}, errors.Errorf("unsupported test manifest type %q", opts.MIMEType)
	}
	img := Image{MIMEType: opts.MIMEType, Platform: imgspecv1.Platform{OS: "linux", Architecture: opts.Architecture}}
	var diffIDs []digest.Digest
	for i := 0; i < opts.Layers; i++ {
		data, diffID, err := layer(i, !opts.Uncompressed)
		if err != nil {
			return Image{}, err
		}
		diffIDs = append(diffIDs, diffID)
		img.Layers = append(img.Layers, newBlob(layerMediaType(docker, !opts.Uncompressed), data))
	}
	config, err := configJSON(img.Platform, diffIDs)
	if err != nil {
		return Image{}, err
	}
	configType := imgspecv1.MediaTypeImageConfig
	if docker {
		configType = dockerConfigMediaType
	}
	img.Config = newBlob(configType, config)
	if img.Manifest, err = manifestJSON(img); err != nil {
		return Image{}, err
	}
	img.Digest = digest.FromBytes(img.Manifest)
	return img, nil
}

// BuildIndex builds a two-platform index (linux/amd64 and linux/arm64 sharing their layers)
// of the OCI index type, or a Docker manifest list when mimeType is the Docker list type.
func BuildIndex(mimeType string, uncompressed bool) (Index, error) {
	instanceType := imgspecv1.MediaTypeImageManifest
	switch mimeType {
	case imgspecv1.MediaTypeImageIndex:
	case dockerListMediaType:
		instanceType = dockerSchema2MediaType
	default:
		return Index{}, errors.Errorf("unsupported test index type %q", mimeType)
	}
	idx := Index{MIMEType: mimeType}
	list := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: mimeType}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := BuildImage(ImageOptions{MIMEType: instanceType, Architecture: arch, Uncompressed: uncompressed})
		if err != nil {
			return Index{}, err
		}
		p := img.Platform
		list.Manifests = append(list.Manifests, imgspecv1.Descriptor{
			MediaType: instanceType, Digest: img.Digest, Size: int64(len(img.Manifest)), Platform: &p,
		})
		idx.Instances = append(idx.Instances, img)
	}
	b, err := json.MarshalIndent(list, "", "   ")
	if err != nil {
		return Index{}, err
	}
	idx.Manifest, idx.Digest = b, digest.FromBytes(b)
	return idx, nil
}

func layerMediaType(docker, gz bool) string {
	switch {
	case docker && gz:
		return dockerLayerGzipMediaType
	case docker:
		return dockerLayerTarMediaType
	case gz:
		return imgspecv1.MediaTypeImageLayerGzip
	default:
		return imgspecv1.MediaTypeImageLayer
	}
}

// layerTar returns layer n: a directory, a text file and a pseudo-random binary file.
func layerTar(n int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := fmt.Sprintf("layer%d/", n)
	files := []struct {
		name string
		data []byte
	}{
		{dir + "hello.txt", []byte(fmt.Sprintf("hello from layer %d\n", n))},
		{dir + "random.bin", DeterministicBytes(uint64(n), 48<<10)},
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: fixedTime, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: fixedTime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DeterministicBytes returns n pseudo-random bytes that depend only on seed.
func DeterministicBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func configJSON(p imgspecv1.Platform, diffIDs []digest.Digest) ([]byte, error) {
	created := fixedTime
	cfg := imgspecv1.Image{
		Created:  &created,
		Platform: p,
		Config:   imgspecv1.ImageConfig{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, Cmd: []string{"/bin/sh"}},
		RootFS:   imgspecv1.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	for range diffIDs {
		cfg.History = append(cfg.History, imgspecv1.History{Created: &created, CreatedBy: "imgcopy conformance"})
	}
	return json.Marshal(cfg)
}

func manifestJSON(img Image) ([]byte, error) {
	m := imgspecv1.Manifest{
		Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: img.MIMEType,
		Config:    imgspecv1.Descriptor{MediaType: img.Config.MediaType, Digest: img.Config.Digest, Size: int64(len(img.Config.Data))},
	}
	for _, l := range img.Layers {
		m.Layers = append(m.Layers, imgspecv1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: int64(len(l.Data))})
	}
	return json.MarshalIndent(m, "", "   ")
}
