package docker

import (
	"net/http"
	"slices"
	"testing"

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
