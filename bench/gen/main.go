// Command gen writes the deterministic benchmark workloads of bench/run.sh as OCI image layouts,
// each with one index.json entry named "bench":
//
//	big    4 incompressible layers (4 × 256 MiB; quick: 4 × 4 MiB)
//	many   60 incompressible layers of 1 MiB (quick: 60 × 16 KiB)
//	tree   a compressible real-world tree: $GOROOT/src in two gzip layers (quick: $GOROOT/src/net/http)
//	multi  an OCI index of 3 platforms (linux/amd64, linux/arm64, linux/ppc64le), each 2 layers
//	       (32 MiB incompressible + a small text layer; quick: 1 MiB)
//	bundle 20 images sharing their bases, as 20 index.json entries app-00 … app-19 (not one
//	       "bench"): a 24 MiB base layer in all, one of 4 runtime layers of 8 MiB, and a 2 MiB
//	       layer of their own (quick: 1 MiB, 256 KiB, 64 KiB), all incompressible
//	sync   30 images of 10 repositories × 3 tags, as entries app-RR-T (RR 00…09, T 1…3): a
//	       16 MiB base layer in all, a 4 MiB layer per repository and a 1 MiB layer of their
//	       own (quick: 1 MiB, 256 KiB, 64 KiB), all incompressible
//
// Usage: gen [-quick] -out DIR [workload...]   (default: all workloads, into DIR/<workload>)
//
// Incompressible data comes from a ChaCha8 stream with a fixed seed per layer, wrapped in a tar
// with fixed metadata and gzip with no compression (stored blocks: random data does not
// compress anyway, and generation stays fast), so the same program writes the same bytes every
// time. The tree workload depends on the Go installation it reads, and so on the Go version.
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

const (
	mediaTypeLayout   = `{"imageLayoutVersion":"1.0.0"}`
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
	refNameAnnotation = "org.opencontainers.image.ref.name"
	refName           = "bench"
)

const (
	kiB = 1 << 10
	miB = 1 << 20
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []descriptor `json:"manifests"`
}

type imageConfig struct {
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Cmd []string `json:"Cmd"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// layerSpec describes one layer: either random bytes or a directory tree.
type layerSpec struct {
	name   string // file name inside the layer (random) or prefix (tree)
	random int64  // bytes of incompressible data
	seed   uint64
	tree   string   // host directory to archive
	skip   []string // subdirectories of tree left out
	level  int      // gzip level
}

type imageSpec struct {
	arch   string
	layers []layerSpec
	name   string // the image's own index.json entry (bundle); "" for the one "bench" entry
}

func workloads(quick bool) map[string][]imageSpec {
	goroot := runtime.GOROOT()
	bigLayer, manyLayer, multiLayer := int64(256*miB), int64(1*miB), int64(32*miB)
	treeDir, treeSkip := filepath.Join(goroot, "src"), []string{"cmd"}
	treeSecond := filepath.Join(goroot, "src", "cmd")
	if quick {
		bigLayer, manyLayer, multiLayer = 4*miB, 16*kiB, 1*miB
		treeDir, treeSkip = filepath.Join(goroot, "src", "net", "http"), []string{"internal"}
		treeSecond = filepath.Join(goroot, "src", "net", "http", "internal")
	}
	w := map[string][]imageSpec{}
	big := imageSpec{arch: "amd64"}
	for i := range 4 {
		big.layers = append(big.layers, layerSpec{name: fmt.Sprintf("data/big-%d.bin", i), random: bigLayer, seed: uint64(100 + i), level: gzip.NoCompression})
	}
	w["big"] = []imageSpec{big}
	many := imageSpec{arch: "amd64"}
	for i := range 60 {
		many.layers = append(many.layers, layerSpec{name: fmt.Sprintf("data/many-%02d.bin", i), random: manyLayer, seed: uint64(200 + i), level: gzip.NoCompression})
	}
	w["many"] = []imageSpec{many}
	w["tree"] = []imageSpec{{arch: "amd64", layers: []layerSpec{
		{name: "goroot/src", tree: treeDir, skip: treeSkip, level: gzip.DefaultCompression},
		{name: "goroot/src/" + filepath.Base(treeSecond), tree: treeSecond, level: gzip.DefaultCompression},
	}}}
	var multi []imageSpec
	for i, arch := range []string{"amd64", "arm64", "ppc64le"} {
		multi = append(multi, imageSpec{arch: arch, layers: []layerSpec{
			{name: "data/" + arch + ".bin", random: multiLayer, seed: uint64(300 + i), level: gzip.NoCompression},
			{name: "etc/arch", tree: "", random: 0, seed: uint64(400 + i), level: gzip.DefaultCompression},
		}})
	}
	w["multi"] = multi
	w["bundle"] = bundleImages(quick)
	// huge is one 1 GiB layer (bench/resume.sh: a pull cut at 70 %, the cost of keeping it).
	hugeLayer := int64(1024 * miB)
	if quick {
		hugeLayer = 16 * miB
	}
	w["huge"] = []imageSpec{{arch: "amd64", layers: []layerSpec{{name: "data/huge.bin", random: hugeLayer, seed: 500, level: gzip.NoCompression}}}}
	w["sync"] = syncImages(quick)
	return w
}

// syncImages are the 30 images of the sync workload: 10 repositories of 3 tags.
func syncImages(quick bool) []imageSpec {
	base, repo, own := int64(16*miB), int64(4*miB), int64(1*miB)
	if quick {
		base, repo, own = 1*miB, 256*kiB, 64*kiB
	}
	var images []imageSpec
	for r := range 10 {
		for tag := 1; tag <= 3; tag++ {
			images = append(images, imageSpec{arch: "amd64", name: fmt.Sprintf("app-%02d-%d", r, tag), layers: []layerSpec{
				{name: "base/base.bin", random: base, seed: 600, level: gzip.NoCompression},
				{name: "repo/repo.bin", random: repo, seed: uint64(610 + r), level: gzip.NoCompression},
				{name: fmt.Sprintf("app/app-%02d-%d.bin", r, tag), random: own, seed: uint64(700 + 10*r + tag), level: gzip.NoCompression},
			}})
		}
	}
	return images
}

// bundleImages are the 20 images of the bundle workload.
func bundleImages(quick bool) []imageSpec {
	base, runtime, app := int64(24*miB), int64(8*miB), int64(2*miB)
	if quick {
		base, runtime, app = 1*miB, 256*kiB, 64*kiB
	}
	var images []imageSpec
	for i := range 20 {
		images = append(images, imageSpec{arch: "amd64", name: fmt.Sprintf("app-%02d", i), layers: []layerSpec{
			{name: "base/base.bin", random: base, seed: 500, level: gzip.NoCompression},
			{name: "runtime/runtime.bin", random: runtime, seed: uint64(510 + i%4), level: gzip.NoCompression},
			{name: fmt.Sprintf("app/app-%02d.bin", i), random: app, seed: uint64(520 + i), level: gzip.NoCompression},
		}})
	}
	return images
}

func main() {
	quick := flag.Bool("quick", false, "small workloads for a smoke run")
	out := flag.String("out", "", "directory to write the layouts into (required)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: gen [-quick] -out DIR [big|many|tree|multi ...]")
		os.Exit(2)
	}
	all := workloads(*quick)
	names := flag.Args()
	if len(names) == 0 {
		names = []string{"big", "many", "tree", "multi"} // bundle, huge and sync only when named
	}
	for _, name := range names {
		images, ok := all[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "gen: unknown workload %q\n", name)
			os.Exit(2)
		}
		start := time.Now()
		top, size, err := writeLayout(filepath.Join(*out, name), images)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gen: %s: %v\n", name, err)
			os.Exit(1)
		}
		fmt.Printf("%s\t%s\t%d\t%.1fs\n", name, top, size, time.Since(start).Seconds())
	}
}

// writeLayout writes the images into a fresh layout at dir and returns the digest of the entry
// tagged "bench" (of index.json itself for named images) and the total bytes of the distinct
// blobs.
func writeLayout(dir string, images []imageSpec) (string, int64, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", 0, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(mediaTypeLayout), 0o644); err != nil {
		return "", 0, err
	}
	var total int64
	var entries []descriptor
	for _, img := range images {
		d, n, err := writeImage(dir, img)
		if err != nil {
			return "", 0, err
		}
		total += n
		d.Platform = &platform{Architecture: img.arch, OS: "linux"}
		entries = append(entries, d)
	}
	if images[0].name != "" {
		return writeNamed(dir, images, entries)
	}
	top := entries[0]
	top.Platform = nil
	if len(images) > 1 {
		b, err := json.Marshal(index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: entries})
		if err != nil {
			return "", 0, err
		}
		if top, err = writeBlob(dir, mediaTypeIndex, b); err != nil {
			return "", 0, err
		}
		total += top.Size
	}
	top.Annotations = map[string]string{refNameAnnotation: refName}
	b, err := json.Marshal(index{SchemaVersion: 2, Manifests: []descriptor{top}})
	if err != nil {
		return "", 0, err
	}
	return top.Digest, total, os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
}

// writeNamed writes index.json with one entry per image, named as the image.
func writeNamed(dir string, images []imageSpec, entries []descriptor) (string, int64, error) {
	for i := range entries {
		entries[i].Platform = nil
		entries[i].Annotations = map[string]string{refNameAnnotation: images[i].name}
	}
	b, err := json.Marshal(index{SchemaVersion: 2, Manifests: entries})
	if err != nil {
		return "", 0, err
	}
	var total int64
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return "", 0, err
	}
	for _, e := range blobs {
		fi, err := e.Info()
		if err != nil {
			return "", 0, err
		}
		total += fi.Size()
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), total, os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
}

func writeImage(dir string, img imageSpec) (descriptor, int64, error) {
	var cfg imageConfig
	cfg.Created = "2024-01-01T00:00:00Z"
	cfg.Architecture, cfg.OS = img.arch, "linux"
	cfg.Config.Cmd = []string{"/bin/sh"}
	cfg.RootFS.Type = "layers"
	m := manifest{SchemaVersion: 2, MediaType: mediaTypeManifest}
	var total int64
	for _, l := range img.layers {
		d, diffID, err := writeLayer(dir, l)
		if err != nil {
			return descriptor{}, 0, err
		}
		m.Layers = append(m.Layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		total += d.Size
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return descriptor{}, 0, err
	}
	if m.Config, err = writeBlob(dir, mediaTypeConfig, b); err != nil {
		return descriptor{}, 0, err
	}
	if b, err = json.Marshal(m); err != nil {
		return descriptor{}, 0, err
	}
	d, err := writeBlob(dir, mediaTypeManifest, b)
	return d, total + m.Config.Size + d.Size, err
}

func writeBlob(dir, mediaType string, b []byte) (descriptor, error) {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", h), b, 0o644); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaType, Digest: "sha256:" + h, Size: int64(len(b))}, nil
}

// writeLayer writes the gzip'd tar of l into the layout and returns its descriptor and diff ID.
func writeLayer(dir string, l layerSpec) (descriptor, string, error) {
	tmp, err := os.CreateTemp(filepath.Join(dir, "blobs"), "layer-")
	if err != nil {
		return descriptor{}, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blobHash, diffHash := sha256.New(), sha256.New()
	counter := &countWriter{w: io.MultiWriter(tmp, blobHash)}
	gz, err := gzip.NewWriterLevel(counter, l.level)
	if err != nil {
		return descriptor{}, "", err
	}
	tw := tar.NewWriter(io.MultiWriter(gz, diffHash))
	if l.tree != "" {
		err = archiveTree(tw, l)
	} else {
		err = archiveRandom(tw, l)
	}
	if err != nil {
		return descriptor{}, "", err
	}
	if err := tw.Close(); err != nil {
		return descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return descriptor{}, "", err
	}
	if err := tmp.Close(); err != nil {
		return descriptor{}, "", err
	}
	digest := hexOf(blobHash)
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return descriptor{}, "", err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "blobs", "sha256", digest)); err != nil {
		return descriptor{}, "", err
	}
	return descriptor{MediaType: mediaTypeLayerGz, Digest: "sha256:" + digest, Size: counter.n}, "sha256:" + hexOf(diffHash), nil
}

var epoch = time.Unix(1704067200, 0).UTC() // 2024-01-01, every entry's mtime

func archiveRandom(tw *tar.Writer, l layerSpec) error {
	if l.random == 0 {
		content := []byte("layer " + l.name + "\n")
		if err := tw.WriteHeader(&tar.Header{Name: l.name, Mode: 0o644, Size: int64(len(content)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: l.name, Mode: 0o644, Size: l.random, ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	var seed [32]byte
	for i := range 8 {
		seed[i] = byte(l.seed >> (8 * i))
	}
	_, err := io.CopyN(tw, rand.NewChaCha8(seed), l.random)
	return err
}

// archiveTree archives the regular files and directories below l.tree, sorted, with fixed
// metadata, under l.name, leaving out l.skip.
func archiveTree(tw *tar.Writer, l layerSpec) error {
	var paths []string
	err := filepath.WalkDir(l.tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(l.tree, p)
		for _, s := range l.skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		if d.IsDir() || d.Type().IsRegular() {
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, rel := range paths {
		p := filepath.Join(l.tree, rel)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.ToSlash(filepath.Join(l.name, rel)), "/.")
		hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: epoch, Typeflag: tar.TypeReg, Size: st.Size(), Format: tar.FormatPAX}
		if st.IsDir() {
			hdr = &tar.Header{Name: name + "/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if st.IsDir() {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.CopyN(tw, f, st.Size())
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func hexOf(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
