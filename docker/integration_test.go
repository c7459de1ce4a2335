package docker

import (
	"context"
	"net/http"
	"slices"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// registryCase is one registry variant with the SystemContext that reaches it.
type registryCase struct {
	name string
	opts testregistry.Options
	sys  func(r *testregistry.Registry) *types.SystemContext
}

var testUsers = map[string]string{"alice": "s3cret"}

func registryCases() []registryCase {
	withCreds := func(r *testregistry.Registry) *types.SystemContext {
		return &types.SystemContext{CertDir: r.CertDir, DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "s3cret"}}
	}
	return []registryCase{
		{name: "plain", sys: func(*testregistry.Registry) *types.SystemContext { return anonSys() }},
		{name: "tls", opts: testregistry.Options{TLS: true}, sys: func(r *testregistry.Registry) *types.SystemContext {
			return &types.SystemContext{NoCreds: true, CertDir: r.CertDir}
		}},
		{name: "basic", opts: testregistry.Options{TLS: true, BasicAuth: testUsers}, sys: withCreds},
		{name: "bearer", opts: testregistry.Options{BearerToken: true, BasicAuth: testUsers}, sys: withCreds},
		{name: "bearer anonymous", opts: testregistry.Options{BearerToken: true}, sys: func(*testregistry.Registry) *types.SystemContext { return anonSys() }},
	}
}

func TestRegistryPushPull(t *testing.T) {
	t.Parallel()
	for _, rc := range registryCases() {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, rc.opts)
			sys := rc.sys(reg)
			ctx := testContext(t)
			cache := newMemCache()

			img := newTestImage(t, 1, "amd64")
			single := mustParse(t, "//"+reg.Host+"/proj/single:v1")
			pushImage(t, ctx, single, sys, cache, nil, []testImage{img}, nil)
			pullImage(t, ctx, single, sys, []testImage{img}, nil)

			imgs := []testImage{newTestImage(t, 2, "amd64"), newTestImage(t, 3, "arm64")}
			idx := indexOf(t, imgs...)
			multi := mustParse(t, "//"+reg.Host+"/proj/multi:v1")
			pushImage(t, ctx, multi, sys, cache, nil, imgs, idx)
			pullImage(t, ctx, multi, sys, imgs, idx)

			tags, err := multi.(types.TagLister).ListTags(ctx, sys)
			if err != nil || !slices.Equal(tags, []string{"v1"}) {
				t.Errorf("ListTags = %v, %v", tags, err)
			}

			// A second repository of the same registry: every blob is mounted, none uploaded.
			reg.ResetRequests()
			other := mustParse(t, "//"+reg.Host+"/other/copy:v1")
			reused := pushImage(t, ctx, other, sys, cache, single, []testImage{img}, nil)
			if len(reused) != 3 {
				t.Fatalf("reused %d blobs, want 3", len(reused))
			}
			for _, rb := range reused {
				if rb.MountedFrom != "proj/single" {
					t.Errorf("blob %s MountedFrom %q, want proj/single", rb.Info.Digest, rb.MountedFrom)
				}
			}
			recs := reg.Requests()
			if n := countRequests(recs, http.MethodPost, "/v2/other/copy/blobs/uploads/", "mount="); n != 3 {
				t.Errorf("%d mount requests, want 3", n)
			}
			if n := countRequests(recs, http.MethodPatch, "/v2/other/copy/", ""); n != 0 {
				t.Errorf("%d PATCH requests after mounts, want 0", n)
			}
			pullImage(t, ctx, other, sys, []testImage{img}, nil)

			// Delete by tag resolves the digest and removes the manifest.
			if err := other.(types.ImageDeleter).DeleteImage(ctx, sys); err != nil {
				t.Fatalf("DeleteImage: %v", err)
			}
			if _, err := other.NewImageSource(ctx, sys); !errors.Is(err, types.ErrManifestNotFound) {
				t.Errorf("after delete: %v, want ErrManifestNotFound", err)
			}
		})
	}
}

func TestRegistryAuthFailures(t *testing.T) {
	t.Parallel()
	wrong := &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "nope"}}
	cases := []struct {
		name string
		opts testregistry.Options
		sys  *types.SystemContext
	}{
		{name: "basic without creds", opts: testregistry.Options{BasicAuth: testUsers}, sys: anonSys()},
		{name: "basic wrong password", opts: testregistry.Options{BasicAuth: testUsers}, sys: wrong},
		{name: "bearer wrong password", opts: testregistry.Options{BearerToken: true, BasicAuth: testUsers}, sys: wrong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, tc.opts)
			ctx := testContext(t)
			ref := mustParse(t, "//"+reg.Host+"/a/b:c")
			_, err := ref.NewImageSource(ctx, tc.sys)
			if !errors.Is(err, types.ErrUnauthorized) {
				t.Fatalf("error %v, want ErrUnauthorized", err)
			}
			if want := "authentication required for " + reg.Host + "/a/b"; !contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
			// Refused credentials are not retried: one token request, at most two manifest GETs
			// (anonymous, then with the answer to the challenge).
			recs := reg.Requests()
			if n := countRequests(recs, http.MethodGet, "/auth/token", ""); n > 1 {
				t.Errorf("%d token requests", n)
			}
			if n := countRequests(recs, http.MethodGet, "/manifests/", ""); n > 2 {
				t.Errorf("%d manifest requests", n)
			}
		})
	}
}

func TestRegistryTLSWithoutCAFails(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{TLS: true})
	ctx := testContext(t)
	ref := mustParse(t, "//"+reg.Host+"/a/b:c")
	if _, err := ref.NewImageSource(ctx, anonSys()); err == nil || !contains(err.Error(), "certificate") {
		t.Fatalf("error %v, want a certificate error", err)
	}
	// --tls-verify=false accepts the certificate.
	sys := &types.SystemContext{NoCreds: true, InsecureSkipTLSVerify: types.OptionalBoolTrue}
	if _, err := ref.NewImageSource(ctx, sys); !errors.Is(err, types.ErrManifestNotFound) {
		t.Fatalf("error %v, want ErrManifestNotFound", err)
	}
}

// rewriteTop does what the copy engine does for a warm re-copy: HasManifest, then only
// PutManifest of the top level and Commit. It returns what HasManifest said.
func rewriteTop(t *testing.T, ctx context.Context, ref types.ImageReference, sys *types.SystemContext, top []byte, mimeType string) bool {
	t.Helper()
	dest, err := ref.NewImageDestination(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	has, err := dest.(types.ManifestChecker).HasManifest(ctx, digestOf(top))
	if err != nil {
		t.Fatalf("HasManifest: %v", err)
	}
	if !has {
		return false
	}
	if err := dest.PutManifest(ctx, top, mimeType, nil); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return true
}

func TestRegistryWarmRecopySkipsBlobs(t *testing.T) {
	t.Parallel()
	for _, rc := range registryCases() {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, rc.opts)
			sys := rc.sys(reg)
			ctx := testContext(t)
			imgs := []testImage{newTestImage(t, 1, "amd64"), newTestImage(t, 2, "arm64")}
			idx := indexOf(t, imgs...)
			cases := []struct {
				name   string
				images []testImage
				index  []byte
				top    []byte
				mt     string
			}{
				{name: "single", images: imgs[:1], top: imgs[0].manifest, mt: imgspecv1.MediaTypeImageManifest},
				{name: "index", images: imgs, index: idx, top: idx, mt: imgspecv1.MediaTypeImageIndex},
			}
			for _, tc := range cases {
				ref := mustParse(t, "//"+reg.Host+"/warm/"+tc.name+":v1")
				if rewriteTop(t, ctx, ref, sys, tc.top, tc.mt) {
					t.Fatalf("%s: HasManifest true before the first push", tc.name)
				}
				pushImage(t, ctx, ref, sys, nil, nil, tc.images, tc.index)

				reg.ResetRequests()
				renamed := mustParse(t, "//"+reg.Host+"/warm/"+tc.name+":v2")
				if !rewriteTop(t, ctx, renamed, sys, tc.top, tc.mt) {
					t.Fatalf("%s: HasManifest false after the push", tc.name)
				}
				recs := reg.Requests()
				manifests := "/v2/warm/" + tc.name + "/manifests/"
				if n := countRequests(recs, http.MethodHead, manifests+digestOf(tc.top).String(), ""); n != 1 {
					t.Errorf("%s: %d HEADs of the manifest digest, want 1", tc.name, n)
				}
				for _, m := range []string{http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodGet} {
					if n := countRequests(recs, m, "/blobs/", ""); n != 0 {
						t.Errorf("%s: %d blob %s requests, want 0", tc.name, n, m)
					}
				}
				if n := countRequests(recs, http.MethodPut, manifests+"sha256:", ""); n != 0 {
					t.Errorf("%s: manifest pushed by digest again", tc.name)
				}
				if n := countRequests(recs, http.MethodPut, manifests+"v2", ""); n != 1 {
					t.Errorf("%s: %d PUTs of the new tag, want 1", tc.name, n)
				}
				pullImage(t, ctx, renamed, sys, tc.images, tc.index)
			}
		})
	}
}
