package layout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

func mustRef(t testing.TB, path, name string) types.ImageReference {
	t.Helper()
	ref, err := NewReference(path, name)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// writeImage copies img to ref the way the copy engine does.
func writeImage(ctx context.Context, ref types.ImageReference, img conformance.Image) error {
	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		return err
	}
	defer dest.Close()
	for _, b := range img.Blobs() {
		info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
		if _, ok, err := dest.TryReusingBlob(ctx, info, types.ReuseOptions{}); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		if _, err := dest.PutBlob(ctx, bytes.NewReader(b.Data), info, types.PutBlobOptions{}); err != nil {
			return err
		}
	}
	if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, nil); err != nil {
		return err
	}
	return dest.Commit(ctx, types.CommitOptions{})
}

func mustWrite(t *testing.T, ref types.ImageReference, img conformance.Image) {
	t.Helper()
	if err := writeImage(context.Background(), ref, img); err != nil {
		t.Fatalf("writing %s: %v", types.ImageName(ref), err)
	}
}

func readIndexForTest(t *testing.T, dir string) *imgspecv1.Index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ParseIndex(b, "test")
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// blobFiles lists the blob files of a layout.
func blobFiles(t *testing.T, dir string) []string {
	t.Helper()
	var res []string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			res = append(res, filepath.Base(filepath.Dir(p))+":"+e.Name())
		}
		return nil
	})
	sort.Strings(res)
	return res
}

func imageBlobs(imgs ...conformance.Image) []string {
	set := map[string]bool{}
	for _, img := range imgs {
		set[img.Digest.String()] = true
		for _, b := range img.Blobs() {
			set[b.Digest.String()] = true
		}
	}
	var res []string
	for d := range set {
		res = append(res, d)
	}
	sort.Strings(res)
	return res
}

func checkReadable(t *testing.T, ref types.ImageReference, img conformance.Image) {
	t.Helper()
	src, err := ref.NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatalf("opening %s: %v", types.ImageName(ref), err)
	}
	defer src.Close()
	b, _, err := src.GetManifest(context.Background(), nil)
	if err != nil || !bytes.Equal(b, img.Manifest) {
		t.Fatalf("%s: manifest differs (%v)", types.ImageName(ref), err)
	}
	for _, blob := range img.Blobs() {
		rc, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: blob.Digest, Size: -1}, types.GetBlobOptions{})
		if err != nil {
			t.Fatalf("%s: blob %s: %v", types.ImageName(ref), blob.Digest, err)
		}
		rc.Close()
	}
}

// TestMultiImageLayout adds, replaces, lists and deletes images in one layout.
func TestMultiImageLayout(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	a := testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")
	b := testImage(t, manifest.DockerV2Schema2MediaType, "arm64") // shares its layer with a
	c := testImage(t, imgspecv1.MediaTypeImageManifest, "ppc64le")
	mustWrite(t, mustRef(t, dir, "a"), a)
	mustWrite(t, mustRef(t, dir, "b"), b)
	checkReadable(t, mustRef(t, dir, "a"), a)
	checkReadable(t, mustRef(t, dir, "b"), b)
	if got, want := blobFiles(t, dir), len(imageBlobs(a, b)); len(got) != want {
		t.Errorf("blob files %v, want %d", got, want)
	}
	idx := readIndexForTest(t, dir)
	if idx.Manifests[1].MediaType != manifest.DockerV2Schema2MediaType {
		t.Errorf("Docker manifest stored as %q", idx.Manifests[1].MediaType)
	}

	mustWrite(t, mustRef(t, dir, "a"), c) // replace a, keep b
	checkReadable(t, mustRef(t, dir, "a"), c)
	checkReadable(t, mustRef(t, dir, "b"), b)
	tags, err := mustRef(t, dir, "").(types.TagLister).ListTags(context.Background(), nil)
	if err != nil || !slices.Equal(tags, []string{"a", "b"}) {
		t.Errorf("ListTags = %v, %v", tags, err)
	}

	if err := mustRef(t, dir, "a").(types.ImageDeleter).DeleteImage(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	checkReadable(t, mustRef(t, dir, "b"), b)
	if got, want := len(blobFiles(t, dir)), len(imageBlobs(b)); got != want {
		t.Errorf("after delete: %d blob files, want %d (only b's): %v", got, want, blobFiles(t, dir))
	}
	if _, err := openSource(t, dir+":a"); !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("deleted image: want ErrManifestNotFound, got %v", err)
	}
	err = mustRef(t, dir, "a").(types.ImageDeleter).DeleteImage(context.Background(), nil)
	if !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("deleting a missing image: want ErrManifestNotFound, got %v", err)
	}
	if err := mustRef(t, dir, "").(types.ImageDeleter).DeleteImage(context.Background(), nil); err == nil {
		t.Error("deleting without a name succeeded")
	}
	// b is the only image now, so the layout's default works.
	checkReadable(t, mustRef(t, dir, ""), b)
}

// TestDeleteKeepsSharedBlobsOfIndexes deletes a single image whose layer a multi-platform
// image (reached through its index) still uses.
func TestDeleteKeepsSharedBlobsOfIndexes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	idx, err := conformance.BuildIndex(imgspecv1.MediaTypeImageIndex, false)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := mustRef(t, dir, "multi").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range idx.Instances {
		for _, b := range inst.Blobs() {
			if _, err := dest.PutBlob(context.Background(), bytes.NewReader(b.Data), types.BlobInfo{Digest: b.Digest, Size: -1}, types.PutBlobOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		d := inst.Digest
		if err := dest.PutManifest(context.Background(), inst.Manifest, inst.MIMEType, &d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(context.Background(), idx.Manifest, idx.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	dest.Close()
	single, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Architecture: "riscv64"})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, mustRef(t, dir, "single"), single)
	if err := mustRef(t, dir, "single").(types.ImageDeleter).DeleteImage(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	want := imageBlobs(idx.Instances...)
	if got := blobFiles(t, dir); len(got) != len(want)+1 { // + the index
		t.Errorf("after deleting single: %v, want %d files", got, len(want)+1)
	}
	src, err := openSource(t, dir+":multi")
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range idx.Instances {
		d := inst.Digest
		if _, _, err := src.GetManifest(context.Background(), &d); err != nil {
			t.Errorf("instance %s: %v", d, err)
		}
	}
}

// TestAbortLeavesLayoutUnchanged checks that failed writes add no file to a layout, and
// that writes into a fresh location leave no directory behind.
func TestAbortLeavesLayoutUnchanged(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	a := testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")
	mustWrite(t, mustRef(t, dir, "a"), a)
	before := snapshot(t, dir)
	other := testImage(t, imgspecv1.MediaTypeImageManifest, "arm64")

	dest, err := mustRef(t, dir, "a").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range other.Blobs() {
		if _, err := dest.PutBlob(context.Background(), bytes.NewReader(b.Data), types.BlobInfo{Digest: b.Digest, Size: -1}, types.PutBlobOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(context.Background(), other.Manifest, other.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Close(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); !mapsEqual(before, after) {
		t.Errorf("aborted write changed the layout:\n%v\n%v", keys(before), keys(after))
	}

	fresh := filepath.Join(t.TempDir(), "fresh")
	dest, err = mustRef(t, fresh, "x").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dest.PutBlob(context.Background(), bytes.NewReader([]byte("data")), types.BlobInfo{Size: -1}, types.PutBlobOptions{})
	dest.Close()
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("aborted write into a fresh location left %s: %v", fresh, err)
	}
}

// TestRecopyWritesNothing checks that copying the same image again reuses every blob and
// leaves the files untouched.
func TestRecopyWritesNothing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	a := testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")
	mustWrite(t, mustRef(t, dir, "a"), a)
	inodes := func() map[string]uint64 {
		res := map[string]uint64{}
		for _, f := range blobFiles(t, dir) {
			alg, name, _ := strings.Cut(f, ":")
			fi, err := os.Stat(filepath.Join(dir, "blobs", alg, name))
			if err != nil {
				t.Fatal(err)
			}
			res[f] = fi.Sys().(*syscall.Stat_t).Ino
		}
		return res
	}
	before, beforeIndex := inodes(), snapshot(t, dir)[IndexFile]
	dest, err := mustRef(t, dir, "a").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	for _, b := range a.Blobs() {
		_, ok, err := dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data))}, types.ReuseOptions{})
		if err != nil || !ok {
			t.Fatalf("blob %s not reused: %v", b.Digest, err)
		}
	}
	if err := dest.PutManifest(context.Background(), a.Manifest, a.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := inodes(); !mapsEqual(before, after) {
		t.Errorf("re-copy rewrote blobs: %v -> %v", before, after)
	}
	if snapshot(t, dir)[IndexFile] != beforeIndex {
		t.Error("re-copy changed index.json")
	}
}

// TestDestinationRefusesHostileLayouts checks writes into directories we must not touch.
func TestDestinationRefusesHostileLayouts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		files   map[string]string
		message string
	}{
		{"not a layout", map[string]string{"notes.txt": "keep"}, "has no oci-layout file"},
		{"unknown version", map[string]string{LayoutFile: `{"imageLayoutVersion":"9.0.0"}`, IndexFile: `{"schemaVersion":2,"manifests":[]}`}, "unsupported imageLayoutVersion"},
		{"broken index.json", map[string]string{LayoutFile: `{"imageLayoutVersion":"1.0.0"}`, IndexFile: `{"schemaVersion":2,"manifests":[{"digest":"sha256:zz"}]}`}, "invalid digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, dir)
			_, err := mustRef(t, dir, "x").NewImageDestination(context.Background(), nil)
			if !errors.Is(err, ErrInvalidLayout) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("want ErrInvalidLayout saying %q, got %v", tc.message, err)
			}
			if after := snapshot(t, dir); !mapsEqual(before, after) {
				t.Errorf("refused destination changed the directory: %v", keys(after))
			}
		})
	}
}

// TestConcurrentWriters writes different images into one layout at the same time, from
// separate destinations (as separate processes would).
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	archs := []string{"amd64", "arm64", "ppc64le", "s390x", "riscv64", "386"}
	var wg sync.WaitGroup
	errs := make([]error, len(archs))
	imgs := make([]conformance.Image, len(archs))
	for i, arch := range archs {
		imgs[i] = testImage(t, imgspecv1.MediaTypeImageManifest, arch)
	}
	for i := range archs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = writeImage(context.Background(), mustRef(t, dir, archs[i]), imgs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %s: %v", archs[i], err)
		}
	}
	for i, arch := range archs {
		checkReadable(t, mustRef(t, dir, arch), imgs[i])
	}
	if n := len(readIndexForTest(t, dir).Manifests); n != len(archs) {
		t.Errorf("index.json has %d entries, want %d", n, len(archs))
	}
}

// TestConcurrentProcesses runs writers in child processes of the test binary, so the lock
// is exercised between processes, not just file descriptors.
func TestConcurrentProcesses(t *testing.T) {
	if os.Getenv("IMGCOPY_LAYOUT_WRITER") != "" {
		return
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	names := []string{"p1", "p2", "p3", "p4"}
	cmds := make([]*exec.Cmd, len(names))
	outs := make([]bytes.Buffer, len(names))
	for i, n := range names {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestWriterProcess$")
		cmds[i].Env = append(os.Environ(), "IMGCOPY_LAYOUT_WRITER="+dir+":"+n)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer process %s: %v\n%s", names[i], err, outs[i].String())
		}
	}
	tags, err := mustRef(t, dir, "").(types.TagLister).ListTags(context.Background(), nil)
	sort.Strings(tags)
	if err != nil || !slices.Equal(tags, names) {
		t.Errorf("after concurrent processes: %v, %v", tags, err)
	}
}

// TestWriterProcess is the child of TestConcurrentProcesses.
func TestWriterProcess(t *testing.T) {
	spec := os.Getenv("IMGCOPY_LAYOUT_WRITER")
	if spec == "" {
		t.Skip("only runs as a child of TestConcurrentProcesses")
	}
	dir, name, _ := strings.Cut(spec, ":")
	img := testImage(t, imgspecv1.MediaTypeImageManifest, name)
	if err := writeImage(context.Background(), mustRef(t, dir, name), img); err != nil {
		fmt.Fprintln(os.Stderr, err)
		t.Fatal(err)
	}
}

// TestCommitFailsWhenReusedBlobVanished simulates a concurrent DeleteImage removing a blob
// between TryReusingBlob and Commit.
func TestCommitFailsWhenReusedBlobVanished(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	a := testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")
	mustWrite(t, mustRef(t, dir, "a"), a)
	dest, err := mustRef(t, dir, "b").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	for _, b := range a.Blobs() {
		if _, ok, _ := dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: b.Digest, Size: -1}, types.ReuseOptions{}); !ok {
			t.Fatalf("blob %s not reusable", b.Digest)
		}
	}
	if err := mustRef(t, dir, "a").(types.ImageDeleter).DeleteImage(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.PutManifest(context.Background(), a.Manifest, a.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(context.Background(), types.CommitOptions{}); !errors.Is(err, types.ErrBlobNotFound) {
		t.Fatalf("Commit with a vanished blob: want ErrBlobNotFound, got %v", err)
	}
	var idx imgspecv1.Index
	b, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	json.Unmarshal(b, &idx)
	if len(idx.Manifests) != 0 {
		t.Errorf("failed commit changed index.json: %s", b)
	}
}

// TestManifestPresentIsNotWrittenAgain: a manifest the layout holds (another tag of the image)
// is not staged again, and when it is gone by the commit (a concurrent DeleteImage), the
// commit fails and names nothing.
func TestManifestPresentIsNotWrittenAgain(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "layout")
	a := testImage(t, imgspecv1.MediaTypeImageManifest, "amd64")
	mustWrite(t, mustRef(t, dir, "a"), a)
	dest, err := mustRef(t, dir, "b").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if err := dest.PutManifest(context.Background(), a.Manifest, a.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	if staged := dest.(*destination).staged; len(staged) != 0 {
		t.Errorf("manifest the layout holds staged again: %v", staged)
	}
	if err := mustRef(t, dir, "a").(types.ImageDeleter).DeleteImage(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	err = dest.Commit(context.Background(), types.CommitOptions{})
	if !errors.Is(err, types.ErrBlobNotFound) {
		t.Fatalf("Commit after the manifest was deleted: %v, want ErrBlobNotFound", err)
	}
	if n := len(readIndexForTest(t, dir).Manifests); n != 0 {
		t.Errorf("failed commit left %d entries", n)
	}
}

// TestPutManifestInstanceMismatch refuses an instance manifest stored under a wrong digest.
func TestPutManifestInstanceMismatch(t *testing.T) {
	t.Parallel()
	dest, err := mustRef(t, filepath.Join(t.TempDir(), "l"), "x").NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	wrong := digest.FromString("other")
	if err := dest.PutManifest(context.Background(), []byte(`{}`), imgspecv1.MediaTypeImageManifest, &wrong); err == nil {
		t.Fatal("PutManifest accepted a manifest that does not match its instance digest")
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	res := map[string]string{}
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			res[rel] = string(b)
		}
		return nil
	})
	return res
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var res []string
	for k := range m {
		res = append(res, k)
	}
	sort.Strings(res)
	return res
}
