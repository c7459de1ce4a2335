package tests

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// TestStoreNames checks the store syntax of every local transport: a store is a path alone,
// and an image in it is a repository path with a tag or digest; anything else is a usage
// error.
func TestStoreNames(t *testing.T) {
	t.Parallel()
	digestName := "app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		store, image string
		want         string // the image's name within its transport; "" for a usage error
	}{
		{"oci:/s", "team/app:1", "/s:team/app:1"},
		{"oci:/s", digestName, "/s:" + digestName},
		{"oci:/s", "", ""},
		{"oci:/s", "Bad Name", ""},
		{"oci:/s:v1", "a:1", ""},
		{"oci-archive:/s.tar", "team/app:1", "/s.tar:team/app:1"},
		{"oci-archive:/s.tar@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "a:1", ""},
		{"docker-archive:/s.tar", "team/app:1", "/s.tar:docker.io/team/app:1"},
		{"docker-archive:/s.tar", "app", ""}, // a bare tag: RepoTags need NAME:TAG
		{"oci:/s", "latest", "/s:latest"},    // a bare tag, kept as skopeo names layout entries
		{"docker-archive:/s.tar", "app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "/s.tar:docker.io/library/app:1"},
		{"docker-archive:/s.tar", digestName, ""},
		{"docker-archive:/s.tar:app:1", "a:1", ""},
		{"dir:/s", "team/app:1", "/s/team/app:1"},
		{"dir:/s", "../app:1", ""},
		{"dir:/s", "UPPER:1", ""},
		{"docker-archive:", "a:1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.store+" "+tc.image, func(t *testing.T) {
			t.Parallel()
			store, err := alltransports.ParseStoreName(tc.store)
			if err == nil {
				var ref types.ImageReference
				if ref, err = store.ImageReference(tc.image); err == nil {
					if tc.want == "" {
						t.Fatalf("got %s, want a usage error", types.ImageName(ref))
					}
					if ref.StringWithinTransport() != tc.want {
						t.Errorf("got %q, want %q", ref.StringWithinTransport(), tc.want)
					}
					return
				}
			}
			if tc.want != "" || !errors.Is(err, types.ErrUsage) || types.Classify(err) != types.ClassUsage {
				t.Errorf("got error %v (class %v), want %q", err, types.Classify(err), tc.want)
			}
		})
	}
	if _, err := alltransports.ParseStoreName("nosuch:/x"); !errors.Is(err, types.ErrUnknownTransport) {
		t.Errorf("unknown transport: %v", err)
	}
}

// TestStoredNamesRoundTrip lists a bundle written under bare tags, full references and
// digest-only names, and writes every listed image into a second store of the same kind under
// its StoredName: the second store lists the same names and digests.
func TestStoredNamesRoundTrip(t *testing.T) {
	t.Parallel()
	imgs := bundleImages(t)
	names := []string{"v1", "example.com/team/app:2", "team/app:3"}
	for _, kind := range []string{"oci", "oci-archive", "docker-archive", "dir"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			first, second := kind+":"+filepath.Join(dir, "first"), kind+":"+filepath.Join(dir, "second")
			var named []bundleImage
			for i, bi := range imgs {
				if kind == "docker-archive" && names[i] == "v1" {
					bi.name = "v1:1" // a RepoTag has a repository
				} else {
					bi.name = names[i]
				}
				named = append(named, bi)
			}
			writeBundle(t, first, named)
			listed := listStore(t, first)
			store, err := alltransports.ParseStoreName(second)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range listed {
				dest, err := store.ImageReference(l.StoredName)
				if err != nil {
					t.Fatalf("%s: %v", l.StoredName, err)
				}
				e2eCopy(t, dest, l.Ref, nil)
			}
			again := listStore(t, second)
			if len(again) != len(listed) {
				t.Fatalf("second store lists %d images, want %d", len(again), len(listed))
			}
			want := map[string]string{}
			for _, l := range listed {
				want[l.StoredName] = l.Digest.String()
			}
			for _, l := range again {
				if want[l.StoredName] != l.Digest.String() {
					t.Errorf("%s: %s in the second store, %s in the first", l.StoredName, l.Digest, want[l.StoredName])
				}
			}
		})
	}
}

func listStore(t *testing.T, name string) []types.ListedImage {
	t.Helper()
	store, err := alltransports.ParseStoreName(name)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := store.(types.ImageLister).ListImages(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range listed {
		if l.StoredName == "" || l.Digest == "" {
			t.Fatalf("%s: listed %+v without a name or digest", name, l)
		}
	}
	return listed
}

// TestArchiveRefusesToReplaceOtherFiles: a file that is not an archive of the destination's
// kind is not overwritten, for both archive transports; an empty file is.
func TestArchiveRefusesToReplaceOtherFiles(t *testing.T) {
	t.Parallel()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest})
	if err != nil {
		t.Fatal(err)
	}
	src := warmSource(t, []conformance.Image{img}, img.Manifest, img.MIMEType)
	for _, kind := range []string{"oci-archive", "docker-archive"} {
		for _, content := range []string{"not an archive", ""} {
			t.Run(kind+" "+content, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "x.tar")
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				_, err := copier.Image(context.Background(), e2eRef(t, kind+":"+path+":a:1"), src, nil)
				got, _ := os.ReadFile(path)
				if content == "" {
					if err != nil {
						t.Fatalf("empty file: %v", err)
					}
					return
				}
				if err == nil || string(got) != content {
					t.Fatalf("copy over a non-archive: %v; file now %d bytes", err, len(got))
				}
			})
		}
	}
}
