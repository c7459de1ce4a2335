package tests

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/docker"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// warmSource writes blobs and manifests into an OCI layout, the top-level one named "src",
// and returns a reference to it.
func warmSource(t *testing.T, imgs []conformance.Image, top []byte, topType string) types.ImageReference {
	t.Helper()
	ctx := context.Background()
	ref, err := layout.NewReference(filepath.Join(t.TempDir(), "src"), "src")
	if err != nil {
		t.Fatal(err)
	}
	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	for _, img := range imgs {
		for _, b := range img.Blobs() {
			if _, err := dest.PutBlob(ctx, bytes.NewReader(b.Data), types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data))}, types.PutBlobOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if len(imgs) > 1 || !bytes.Equal(img.Manifest, top) {
			d := img.Digest
			if err := dest.PutManifest(ctx, img.Manifest, img.MIMEType, &d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := dest.PutManifest(ctx, top, topType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	return ref
}

func countWarm(recs []testregistry.RequestRecord, method, pathPart string) int {
	n := 0
	for _, r := range recs {
		if r.Method == method && strings.Contains(r.Path, pathPart) {
			n++
		}
	}
	return n
}

// TestWarmRecopySkipsBlobs copies an image to a registry, then again with a fresh engine
// run: the later copies HEAD the tag (and, for a new tag, the manifest digest), touch no
// blob and write at most the tag (issue 8).
func TestWarmRecopySkipsBlobs(t *testing.T) {
	t.Parallel()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Layers: 8})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := conformance.BuildIndex(imgspecv1.MediaTypeImageIndex, false)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		src  types.ImageReference
		top  []byte
	}{
		{name: "single", src: warmSource(t, []conformance.Image{img}, img.Manifest, img.MIMEType), top: img.Manifest},
		{name: "index", src: warmSource(t, idx.Instances, idx.Manifest, idx.MIMEType), top: idx.Manifest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, testregistry.Options{BearerToken: true})
			sys := &types.SystemContext{NoCreds: true}
			opts := &copier.Options{SourceCtx: sys, DestinationCtx: sys}
			ctx := context.Background()
			v1, _ := docker.Transport.ParseReference("//" + reg.Host + "/warm/img:v1")
			if res, err := copier.Image(ctx, v1, tc.src, opts); err != nil || res.AlreadyPresent {
				t.Fatalf("cold copy: %+v, %v", res, err)
			}
			// v2 goes first: v1's HEAD by digest may be cancelled once its tag answers, and
			// the registry records a cancelled request when its handler ends, which can be
			// after the next copy began; v1's count allows it, v2's would not.
			for _, tag := range []string{"v2", "v1"} {
				reg.ResetRequests()
				ref, _ := docker.Transport.ParseReference("//" + reg.Host + "/warm/img:" + tag)
				res, err := copier.Image(ctx, ref, tc.src, opts)
				if err != nil || !res.AlreadyPresent || !bytes.Equal(res.Manifest, tc.top) || res.BlobsCopied+res.BlobsReused != 0 {
					t.Fatalf("warm copy to %s: %+v, %v", tag, res, err)
				}
				// v1 points at the manifest already: one HEAD of the tag, nothing written (and
				// a HEAD of the digest only if the tag took longer than 5 ms to answer). v2 is
				// new: the tag's HEAD finds nothing, the digest's finds the manifest, and only
				// the tag is written.
				recs := reg.Requests()
				wantDigestHEADs, wantPUTs := 0, 0
				if tag == "v2" {
					wantDigestHEADs, wantPUTs = 1, 1
				}
				if n := countWarm(recs, http.MethodHead, "/manifests/"+tag); n != 1 {
					t.Errorf("%s: %d HEADs of the tag, want 1", tag, n)
				}
				if n := countWarm(recs, http.MethodHead, "/manifests/"+digest.FromBytes(tc.top).String()); n != wantDigestHEADs && (tag != "v1" || n > 1) {
					t.Errorf("%s: %d HEADs of the manifest digest, want %d", tag, n, wantDigestHEADs)
				}
				if n := countWarm(recs, http.MethodHead, "/blobs/") + countWarm(recs, http.MethodPost, "/blobs/") + countWarm(recs, http.MethodPatch, "/blobs/"); n != 0 {
					t.Errorf("%s: %d blob requests, want 0", tag, n)
				}
				if n := countWarm(recs, http.MethodPut, "/manifests/"); n != wantPUTs {
					t.Errorf("%s: %d manifest PUTs, want %d", tag, n, wantPUTs)
				}
			}
			// A conversion writes other bytes: no shortcut, and the copy still works.
			conv, _ := docker.Transport.ParseReference("//" + reg.Host + "/warm/img:docker")
			res, err := copier.Image(ctx, conv, tc.src, &copier.Options{SourceCtx: sys, DestinationCtx: sys, ForceManifestMIMEType: manifest.DockerV2Schema2MediaType})
			if err != nil || res.AlreadyPresent || !res.DigestChanged {
				t.Fatalf("converting copy: %+v, %v", res, err)
			}
		})
	}
}

// TestWarmRecopyOCILayout re-copies into an OCI layout under another name: the layout
// already holds the image, so nothing but the manifest and index.json is written.
func TestWarmRecopyOCILayout(t *testing.T) {
	t.Parallel()
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	src := warmSource(t, []conformance.Image{img}, img.Manifest, img.MIMEType)
	dir := filepath.Join(t.TempDir(), "dest")
	for i, name := range []string{"a", "a", "b"} {
		ref, err := layout.NewReference(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		res, err := copier.Image(context.Background(), ref, src, nil)
		if err != nil || res.AlreadyPresent != (i > 0) {
			t.Fatalf("copy %d to %s: %+v, %v", i, name, res, err)
		}
	}
}
