package tests

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/integrity"
	"github.com/imgcopy/imgcopy/internal/tarindex"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// verifyStore runs integrity.Check on a store name.
func verifyStore(t *testing.T, name string) (*integrity.Report, error) {
	t.Helper()
	ref, err := alltransports.ParseImageName(name)
	if err != nil {
		t.Fatal(err)
	}
	return integrity.Check(context.Background(), ref, nil, integrity.Options{})
}

// tarMember returns the offset and size of a member's content in the tar at path.
func tarMember(t *testing.T, path, name string) (int64, int64) {
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
	e, err := ix.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return e.Offset, e.Size
}

// flipByte inverts the last bit of the byte at off in the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// renameMember renames a member of the tar at path in place (same length, header checksum
// recomputed), which makes the member under its old name missing.
func renameMember(t *testing.T, path, name, newName string) {
	t.Helper()
	if len(newName) != len(name) || len(name) > 100 {
		t.Fatalf("cannot rename %q to %q in place", name, newName)
	}
	off, _ := tarMember(t, path, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 512)
	if _, err := f.ReadAt(hdr, off-512); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(hdr[:100]), name) {
		t.Fatalf("header before %s does not hold its name", name)
	}
	copy(hdr, newName)
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], []byte(leftPad(strconv.FormatInt(int64(sum), 8), 6)+"\x00 "))
	if _, err := f.WriteAt(hdr, off-512); err != nil {
		t.Fatal(err)
	}
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

// TestVerifyFindsDamage writes three-image bundles into every local store kind and damages
// them: a flipped byte in a layer, a missing layer, a manifest whose config is missing. Each
// is found, named by its blob digest, and classified as a verification failure; the intact
// bundle passes with every blob counted once.
func TestVerifyFindsDamage(t *testing.T) {
	t.Parallel()
	imgs := bundleImages(t)
	unique, blobs := uniqueBlobBytes(imgs)
	layer := imgs[2].img.Layers[2] // only in the third image
	config := imgs[1].img.Config
	blobPath := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	type damage func(t *testing.T, path string)
	oci := map[string]damage{
		"flipped byte":   func(t *testing.T, p string) { flipByte(t, filepath.Join(p, blobPath(layer.Digest)), 100) },
		"missing blob":   func(t *testing.T, p string) { os.Remove(filepath.Join(p, blobPath(layer.Digest))) },
		"missing config": func(t *testing.T, p string) { os.Remove(filepath.Join(p, blobPath(config.Digest))) },
		"truncated":      func(t *testing.T, p string) { os.Truncate(filepath.Join(p, blobPath(layer.Digest)), 100) },
	}
	archive := map[string]damage{
		"flipped byte": func(t *testing.T, p string) {
			off, _ := tarMember(t, p, blobPath(layer.Digest))
			flipByte(t, p, off+100)
		},
		"missing blob": func(t *testing.T, p string) {
			renameMember(t, p, blobPath(layer.Digest), strings.Replace(blobPath(layer.Digest), "blobs/", "gone!/", 1))
		},
		"missing config": func(t *testing.T, p string) {
			renameMember(t, p, blobPath(config.Digest), strings.Replace(blobPath(config.Digest), "blobs/", "gone!/", 1))
		},
		// Cut short on its way (a full USB stick, an interrupted transfer): the whole archive
		// cannot be indexed, which is a problem found, not a failure to check.
		"truncated": func(t *testing.T, p string) {
			off, _ := tarMember(t, p, blobPath(layer.Digest))
			if err := os.Truncate(p, off+100); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, kind := range []string{"oci", "oci-archive", "docker-archive"} {
		damages := archive
		if kind == "oci" {
			damages = oci
		}
		for _, name := range []string{"", "flipped byte", "missing blob", "missing config", "truncated"} {
			t.Run(kind+"/"+name, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "bundle")
				writeBundle(t, kind+":"+path, imgs)
				if name == "" {
					rep, err := verifyStore(t, kind+":"+path)
					if err != nil || rep.Images != 3 || rep.Blobs != blobs-3 || rep.Bytes != unique-manifestBytes(imgs) {
						t.Fatalf("intact bundle: %+v, %v; want 3 images, %d blobs", rep, err, blobs-3)
					}
					return
				}
				damages[name](t, path)
				want, sentinel := layer.Digest, types.ErrDigestMismatch
				switch name {
				case "missing blob":
					sentinel = types.ErrBlobNotFound
				case "missing config":
					want, sentinel = config.Digest, types.ErrBlobNotFound
				case "truncated":
					if kind != "oci" {
						sentinel = io.ErrUnexpectedEOF
					}
				}
				if kind == "docker-archive" && name != "flipped byte" && name != "truncated" {
					sentinel = nil // the archive cannot serve the image at all: ErrInvalidArchive
				}
				rep, err := verifyStore(t, kind+":"+path)
				var ierr *integrity.Error
				if !errors.As(err, &ierr) || types.Classify(err) != types.ClassVerification || rep == nil {
					t.Fatalf("want an integrity.Error of class verification, got %v (class %v)", err, types.Classify(err))
				}
				if len(rep.Problems) != 1 || !strings.Contains(err.Error(), want.Encoded()) {
					t.Fatalf("want one problem naming %s, got %v", want, err)
				}
				if sentinel != nil && !errors.Is(err, sentinel) {
					t.Errorf("problem %v does not wrap %v", err, sentinel)
				}
			})
		}
	}
}

// manifestBytes is the size of the manifests of imgs (verify counts them apart from blobs).
func manifestBytes(imgs []bundleImage) int64 {
	var n int64
	for _, bi := range imgs {
		n += int64(len(bi.img.Manifest))
	}
	return n
}

// TestVerifyRegistryImage checks an image in a registry (a reference with a tag lists just
// that image) and fails with a not-found error, not a verification failure, when the
// repository does not exist.
func TestVerifyRegistryImage(t *testing.T) {
	t.Parallel()
	imgs := bundleImages(t)
	reg := testregistry.Start(t, testregistry.Options{})
	name := "docker://" + reg.Host + "/verify/app:v1"
	e2eCopy(t, e2eRef(t, name), imgs[2].src, nil)
	rep, err := verifyStore(t, name)
	if err != nil || rep.Images != 1 || rep.Blobs != len(imgs[2].img.Blobs()) {
		t.Fatalf("registry image: %+v, %v", rep, err)
	}
	_, err = verifyStore(t, "docker://"+reg.Host+"/verify/absent:v1")
	if !errors.Is(err, types.ErrManifestNotFound) || types.Classify(err) == types.ClassVerification {
		t.Fatalf("absent image: want not found, got %v (class %v)", err, types.Classify(err))
	}
}

// TestVerifyDirStoreChecksEveryCopy damages one of two names of an image in a dir: store,
// which keeps a whole copy of the image per name (as skopeo sync --dest dir writes it): the
// damaged copy is found although the other name's copy of the same blob is intact.
func TestVerifyDirStoreChecksEveryCopy(t *testing.T) {
	t.Parallel()
	img := bundleImages(t)[0]
	second := img
	second.name = "team/app0:latest" // listed before team/app0:v0, whose copy is damaged
	path := filepath.Join(t.TempDir(), "tree")
	writeBundle(t, "dir:"+path, []bundleImage{img, second})
	layer := img.img.Layers[1]
	flipByte(t, filepath.Join(path, "team", "app0:v0", layer.Digest.Encoded()), 10)
	rep, err := verifyStore(t, "dir:"+path)
	if !errors.Is(err, types.ErrDigestMismatch) || rep == nil || len(rep.Problems) != 1 || !strings.Contains(err.Error(), "app0:v0") || !strings.Contains(err.Error(), layer.Digest.String()) {
		t.Fatalf("want one digest mismatch of %s in team/app0:v0, got %v (%+v)", layer.Digest, err, rep)
	}
}

// TestVerifyRepositoryCountsTagsOfRelated verifies a registry repository named without a tag,
// which lists every tag, the image's cosign signature tag and (on a registry without the
// referrers API) its referrers tag included: those are counted with what travels with the
// image, as when the image alone is verified, not as images of their own.
func TestVerifyRepositoryCountsTagsOfRelated(t *testing.T) {
	t.Parallel()
	for _, kind := range refRegistryKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := newRefScenario(t, kind)
			one, err := verifyStore(t, "docker://"+s.src.host+"/"+s.repo+":v1")
			if err != nil {
				t.Fatal(err)
			}
			all, err := verifyStore(t, "docker://"+s.src.host+"/"+s.repo)
			if err != nil {
				t.Fatal(err)
			}
			if all.Images != 1 || all.Related != one.Related || all.Related == 0 {
				t.Errorf("repository: %d image(s) and %d related; want 1 and %d, as for the image alone", all.Images, all.Related, one.Related)
			}
		})
	}
}
