package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/tarindex"
	"github.com/imgcopy/imgcopy/oci/layout"
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

func testImage(t *testing.T, arch string) conformance.Image {
	t.Helper()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Architecture: arch, Layers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeImage(ctx context.Context, ref types.ImageReference, img conformance.Image) error {
	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		return err
	}
	defer dest.Close()
	for _, b := range img.Blobs() {
		info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
		_, ok, err := dest.TryReusingBlob(ctx, info, types.ReuseOptions{})
		if err != nil {
			return err
		}
		if !ok {
			if _, err := dest.PutBlob(ctx, bytes.NewReader(b.Data), info, types.PutBlobOptions{}); err != nil {
				return err
			}
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

func checkReadable(t *testing.T, ref types.ImageReference, img conformance.Image) {
	t.Helper()
	src, err := ref.NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatalf("opening %s: %v", types.ImageName(ref), err)
	}
	defer src.Close()
	m, _, err := src.GetManifest(context.Background(), nil)
	if err != nil || !bytes.Equal(m, img.Manifest) {
		t.Fatalf("%s: manifest differs (%v)", types.ImageName(ref), err)
	}
	for _, b := range img.Blobs() {
		rc, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: b.Digest, Size: -1}, types.GetBlobOptions{})
		if err != nil {
			t.Fatalf("blob %s: %v", b.Digest, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, b.Data) {
			t.Fatalf("blob %s differs", b.Digest)
		}
	}
}

// members lists the regular members of the archive at path.
func members(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	ix, err := tarindex.Build(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return ix.Names()
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var res []string
	for _, e := range entries {
		res = append(res, e.Name())
	}
	return res
}

// TestMultiImageArchive adds and replaces images in one archive and checks the layout
// inside: every blob once, index.json last, other images kept.
func TestMultiImageArchive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "images.tar")
	a, b, c := testImage(t, "amd64"), testImage(t, "arm64"), testImage(t, "s390x")
	mustWrite(t, mustRef(t, path, "a"), a)
	mustWrite(t, mustRef(t, path, "b"), b)
	checkReadable(t, mustRef(t, path, "a"), a)
	checkReadable(t, mustRef(t, path, "b"), b)
	mustWrite(t, mustRef(t, path, "a"), c)
	checkReadable(t, mustRef(t, path, "a"), c)
	checkReadable(t, mustRef(t, path, "b"), b)
	tags, err := mustRef(t, path, "").(types.TagLister).ListTags(context.Background(), nil)
	if err != nil || !slices.Equal(tags, []string{"a", "b"}) {
		t.Errorf("ListTags = %v, %v", tags, err)
	}
	names := members(t, path)
	// a's old config and manifest are gone with the image they belonged to: 2 configs +
	// 2 manifests + 1 shared layer + oci-layout + index.json.
	if len(names) != 7 {
		t.Errorf("members %v", names)
	}
	if got := dirEntries(t, filepath.Dir(path)); !slices.Equal(got, []string{"images.tar"}) {
		t.Errorf("temporary files left next to the archive: %v", got)
	}
	f, _ := os.Open(path)
	defer f.Close()
	tr := tar.NewReader(f)
	var order []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		order = append(order, hdr.Name)
	}
	if order[0] != layout.LayoutFile || order[len(order)-1] != layout.IndexFile {
		t.Errorf("member order %v: want oci-layout first and index.json last", order)
	}
	src, err := mustRef(t, path, "").NewImageSource(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("opening an archive with two images without a name: %v", err)
		if src != nil {
			src.Close()
		}
	}
}

// TestAbortLeavesArchiveUnchanged checks failed writes to a new and an existing archive.
func TestAbortLeavesArchiveUnchanged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "images.tar")
	mustWrite(t, mustRef(t, path, "a"), testImage(t, "amd64"))
	before, _ := os.ReadFile(path)
	other := testImage(t, "arm64")
	ctx, cancel := context.WithCancel(context.Background())
	dest, err := mustRef(t, path, "b").NewImageDestination(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dest.PutBlob(ctx, bytes.NewReader(other.Config.Data), types.BlobInfo{Digest: other.Config.Digest, Size: -1}, types.PutBlobOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dest.PutManifest(ctx, other.Manifest, other.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := dest.PutBlob(ctx, bytes.NewReader(other.Layers[0].Data), types.BlobInfo{Size: -1}, types.PutBlobOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("PutBlob with a cancelled context: %v", err)
	}
	if err := dest.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("an aborted write changed the archive")
	}
	if got := dirEntries(t, dir); !slices.Equal(got, []string{"images.tar"}) {
		t.Errorf("files left behind: %v", got)
	}
}

// TestConcurrentArchiveWriters commits different images to one archive at the same time.
func TestConcurrentArchiveWriters(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "images.tar")
	archs := []string{"amd64", "arm64", "ppc64le", "s390x"}
	var wg sync.WaitGroup
	errs := make([]error, len(archs))
	imgs := make([]conformance.Image, len(archs))
	for i, arch := range archs {
		imgs[i] = testImage(t, arch)
	}
	for i := range archs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = writeImage(context.Background(), mustRef(t, path, archs[i]), imgs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %s: %v", archs[i], err)
		}
	}
	for i, arch := range archs {
		checkReadable(t, mustRef(t, path, arch), imgs[i])
	}
}

// TestReadForeignArchive reads a tar of a layout written by the oci: transport, with "./"
// member names, directory entries and a blob stored as a symlink, as other tools write them.
func TestReadForeignArchive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := testImage(t, "amd64")
	layoutDir := filepath.Join(dir, "layout")
	lref, err := layout.NewReference(layoutDir, "docker.io/library/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, lref, img)
	path := filepath.Join(dir, "foreign.tar")
	writeTarOfDir(t, layoutDir, path, img.Config.Digest)
	checkReadable(t, mustRef(t, path, "1.0"), img)
	checkReadable(t, mustRef(t, path, ""), img)
	src, err := mustRef(t, path, "").NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, _, err = src.GetBlob(context.Background(), types.BlobInfo{Digest: digest.FromString("missing"), Size: -1}, types.GetBlobOptions{})
	if !errors.Is(err, types.ErrBlobNotFound) {
		t.Errorf("missing blob: %v", err)
	}
}

// writeTarOfDir tars dir with "./" prefixes and directory entries; the blob named symlinked
// is stored as a symlink to a copy under blobs/extra/, added at the end.
func writeTarOfDir(t *testing.T, dir, path string, symlinked digest.Digest) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var files []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		files = append(files, p)
		return err
	})
	sort.Strings(files)
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || rel == layout.LockFile {
			continue
		}
		fi, _ := os.Stat(p)
		hdr, _ := tar.FileInfoHeader(fi, "")
		hdr.Name = "./" + filepath.ToSlash(rel)
		var data []byte
		switch {
		case fi.IsDir():
			hdr.Name += "/"
		case filepath.Base(p) == symlinked.Encoded():
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, "../extra/"+symlinked.Encoded(), 0
		default:
			data = mustRead(t, p)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	target := mustRead(t, filepath.Join(dir, "blobs", "sha256", symlinked.Encoded()))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./blobs/extra/" + symlinked.Encoded(), Size: int64(len(target)), Mode: 0o644})
	tw.Write(target)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostileArchives checks that unsafe or malformed archives are refused with an error
// naming the problem, and that an existing file that is not an archive is not overwritten.
func TestHostileArchives(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		members []tar.Header
		is      error
		message string
		raw     []byte // the file's content instead of a tar of members
	}{
		{"parent directory", []tar.Header{{Name: "../evil", Typeflag: tar.TypeReg}}, tarindex.ErrUnsafePath, `"../evil"`, nil},
		{"absolute path", []tar.Header{{Name: "/etc/passwd", Typeflag: tar.TypeReg}}, tarindex.ErrUnsafePath, `"/etc/passwd"`, nil},
		{"symlink escaping", []tar.Header{{Name: "index.json", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"}}, tarindex.ErrUnsafePath, "points outside", nil},
		{"duplicate member", []tar.Header{{Name: "index.json", Typeflag: tar.TypeReg}, {Name: "./index.json", Typeflag: tar.TypeSymlink, Linkname: "oci-layout"}}, tarindex.ErrDuplicateEntry, "index.json", nil},
		{"no oci-layout", []tar.Header{{Name: "index.json", Typeflag: tar.TypeReg}}, layout.ErrInvalidLayout, "missing oci-layout", nil},
		// Not a tar at all, or one cut short: damage an embedder tells apart from a file that
		// could not be read.
		{"garbage", nil, layout.ErrInvalidLayout, "invalid tar header", bytes.Repeat([]byte("garbage!"), 256)},
		{"truncated", nil, layout.ErrInvalidLayout, "truncated", truncatedTar(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.tar")
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tc.members {
				tw.WriteHeader(&h)
			}
			tw.Close()
			if tc.raw != nil {
				buf.Reset()
				buf.Write(tc.raw)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := mustRef(t, path, "").NewImageSource(context.Background(), nil)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), path) {
				t.Errorf("reading: want %v naming %q and the file, got %v", tc.is, tc.message, err)
			}
			_, err = mustRef(t, path, "x").NewImageDestination(context.Background(), nil)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), "refusing to replace") {
				t.Errorf("writing: want %v refusing to replace, got %v", tc.is, err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, buf.Bytes()) {
				t.Error("the hostile archive was modified")
			}
		})
	}
}

// truncatedTar returns a tar whose only member is cut short.
func truncatedTar(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "oci-layout", Typeflag: tar.TypeReg, Size: 4096}); err != nil {
		t.Fatal(err)
	}
	tw.Write(make([]byte, 4096))
	tw.Close()
	return buf.Bytes()[:1024]
}

func TestOverwriteNonArchiveRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "notes.txt")
	os.WriteFile(path, []byte("precious"), 0o644)
	if _, err := mustRef(t, path, "x").NewImageDestination(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "refusing to replace") {
		t.Errorf("want a refusal, got %v", err)
	}
	empty := filepath.Join(dir, "empty.tar")
	os.WriteFile(empty, nil, 0o644)
	mustWrite(t, mustRef(t, empty, "x"), testImage(t, "amd64"))
}

func TestParseReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    reference
		wantErr bool
	}{
		{in: "/tmp/a.tar", want: reference{path: "/tmp/a.tar"}},
		{in: "/tmp/a.tar:v1", want: reference{path: "/tmp/a.tar", name: "v1"}},
		{in: "a.tar:example.com/app:v1", want: reference{path: "a.tar", name: "example.com/app:v1"}},
		{in: "a.tar@sha256:" + strings.Repeat("a", 64), want: reference{path: "a.tar", digest: digest.Digest("sha256:" + strings.Repeat("a", 64))}},
		{in: "", wantErr: true},
		{in: "a.tar:bad name", wantErr: true},
		{in: "a.tar@sha256:abc", wantErr: true},
	} {
		ref, err := Transport.ParseReference(tc.in)
		if tc.wantErr != (err != nil) {
			t.Errorf("ParseReference(%q): error %v", tc.in, err)
			continue
		}
		if err == nil && ref.(reference) != tc.want {
			t.Errorf("ParseReference(%q) = %#v", tc.in, ref)
		}
	}
	if _, err := NewReference("a:b", ""); err == nil {
		t.Error("NewReference accepted a path with a colon")
	}
	if _, err := NewReference("/tmp/a.tar", "../x"); err == nil {
		t.Error("NewReference accepted an invalid name")
	}
	if _, err := NewDigestReference("/tmp/a.tar", digest.Digest("sha256:"+strings.Repeat("b", 64))); err != nil {
		t.Error(err)
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"/tmp/a.tar", "a.tar:v1", "a.tar:example.com/app:v1", "a.tar@sha256:" + strings.Repeat("a", 64), "x@y:z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := Transport.ParseReference(s)
		if err != nil {
			return
		}
		again, err := Transport.ParseReference(ref.StringWithinTransport())
		if err != nil || again.(reference) != ref.(reference) {
			t.Fatalf("%q does not round-trip through %q: %v", s, ref.StringWithinTransport(), err)
		}
	})
}
