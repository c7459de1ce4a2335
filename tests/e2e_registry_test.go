package tests

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// e2eUploadRequests returns the blob upload requests (POST, PATCH, PUT under /blobs/uploads/)
// the registry received, except those refused with 401 (answered by authenticating).
func e2eUploadRequests(reg *testregistry.Registry) []testregistry.RequestRecord {
	var out []testregistry.RequestRecord
	for _, r := range reg.Requests() {
		if strings.Contains(r.Path, "/blobs/uploads/") && (r.Method == "POST" || r.Method == "PATCH" || r.Method == "PUT") &&
			r.Status != http.StatusUnauthorized {
			out = append(out, r)
		}
	}
	return out
}

// TestE2ERegistryReuse pushes an image (single and multi-platform) twice to the same
// repository — the second push uploads no blob — and then to another repository of the same
// registry with the same blob-info cache: every blob is mounted from the first repository,
// nothing is uploaded, and the digest is unchanged.
func TestE2ERegistryReuse(t *testing.T) {
	t.Parallel()
	alice := &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "s3cret"}}
	cases := []struct {
		name string
		opts fixtures.Options
		reg  testregistry.Options
		sys  *types.SystemContext
	}{
		{"single", fixtures.Options{}, testregistry.Options{}, nil},
		{"multi", fixtures.Options{Platforms: e2ePlatforms()}, testregistry.Options{}, nil},
		// Mounting with tokens needs pull access to the source repository in the token's scope.
		{"bearer", fixtures.Options{}, testregistry.Options{BearerToken: true, BasicAuth: map[string]string{"alice": "s3cret"}}, alice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, origin := e2eFixture(t, tc.opts)
			reg := testregistry.Start(t, tc.reg)
			cache := memory.New()
			first := e2eRef(t, "docker://"+reg.Host+"/e2e/first:v1")
			res := e2eCopy(t, first, origin, &copier.Options{BlobInfoCache: cache, DestinationCtx: tc.sys})
			if res.ManifestDigest != l.ManifestDigest || res.BlobsCopied == 0 || len(e2eUploadRequests(reg)) == 0 {
				t.Fatalf("first push: %s, %d blobs copied, %d upload requests", res.ManifestDigest, res.BlobsCopied, len(e2eUploadRequests(reg)))
			}

			reg.ResetRequests()
			res = e2eCopy(t, first, origin, &copier.Options{BlobInfoCache: cache, DestinationCtx: tc.sys})
			if up := e2eUploadRequests(reg); len(up) != 0 || res.BytesCopied != 0 || res.BlobsCopied != 0 || res.ManifestDigest != l.ManifestDigest {
				t.Errorf("second push to the same repository: %d upload requests %s, %d blobs / %d bytes copied", len(up), e2eJSON(up), res.BlobsCopied, res.BytesCopied)
			}

			reg.ResetRequests()
			var mu sync.Mutex
			mounted := map[string]string{}
			second := e2eRef(t, "docker://"+reg.Host+"/e2e/second:v1")
			res = e2eCopy(t, second, origin, &copier.Options{BlobInfoCache: cache, DestinationCtx: tc.sys, Progress: func(ev copier.ProgressEvent) {
				if ev.Kind == copier.EventBlobMounted {
					mu.Lock()
					mounted[ev.Digest.String()] = ev.MountedFrom
					mu.Unlock()
				}
			}})
			e2eCheckMounted(t, reg, res, len(mounted))
			if res.ManifestDigest != l.ManifestDigest {
				t.Errorf("push to the second repository wrote %s, want %s", res.ManifestDigest, l.ManifestDigest)
			}
			e2eCheckMatrixCopy(t, l, "registry", res, e2eVerify(t, second, tc.sys))

			// Registry to registry on the same host, with a fresh cache: the destination learns
			// from the source reference that the blobs are next door and mounts them.
			reg.ResetRequests()
			mountEvents := 0
			third := e2eRef(t, "docker://"+reg.Host+"/e2e/third:v1")
			res = e2eCopy(t, third, first, &copier.Options{SourceCtx: tc.sys, DestinationCtx: tc.sys, Progress: func(ev copier.ProgressEvent) {
				if ev.Kind == copier.EventBlobMounted {
					mu.Lock()
					mountEvents++
					mu.Unlock()
				}
			}})
			mu.Lock()
			e2eCheckMounted(t, reg, res, mountEvents)
			mu.Unlock()
		})
	}
}

// e2eCheckMounted checks that a push moved no blob content: only POSTs asking to mount from
// e2e/first, each answered 201 Created, and as many mount events as POSTs.
func e2eCheckMounted(t *testing.T, reg *testregistry.Registry, res *copier.Result, mountEvents int) {
	t.Helper()
	up := e2eUploadRequests(reg)
	if len(up) == 0 {
		t.Fatalf("push to the second repository sent no mount request")
	}
	for _, r := range up {
		q, err := url.ParseQuery(r.RawQuery)
		if err != nil || r.Method != "POST" || q.Get("mount") == "" || q.Get("from") != "e2e/first" || r.Status != 201 {
			t.Errorf("push to the second repository: %s %s?%s → %d, want only mounts from e2e/first", r.Method, r.Path, r.RawQuery, r.Status)
		}
	}
	if res.BytesCopied != 0 || res.BlobsCopied != 0 || mountEvents != len(up) {
		t.Errorf("push to the second repository: %d blobs / %d bytes copied, %d mount events for %d mounts", res.BlobsCopied, res.BytesCopied, mountEvents, len(up))
	}
}

// e2eRejectManifestTypes wraps a registry so that it refuses manifest uploads of the given
// types with 400 MANIFEST_INVALID, as registries without OCI support do.
func e2eRejectManifestTypes(mimeTypes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && slices.Contains(mimeTypes, r.Header.Get("Content-Type")) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"type not supported"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestE2EManifestFallback pushes an OCI image to a registry that refuses OCI manifests: the
// copy falls back to schema2 with the same config and layers, unless PreserveDigests forbids
// the change; a registry refusing every type fails with an error naming each attempt.
func TestE2EManifestFallback(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{})
	want := l.Images[0]
	ctx := context.Background()

	reg := testregistry.Start(t, testregistry.Options{Wrap: e2eRejectManifestTypes(imgspecv1.MediaTypeImageManifest)})
	dest := e2eRef(t, "docker://"+reg.Host+"/e2e/fallback:v1")
	var rejected types.ManifestTypeRejectedError
	if _, err := copier.Image(ctx, dest, origin, &copier.Options{PreserveDigests: true}); !errors.As(err, &rejected) ||
		rejected.MIMEType != imgspecv1.MediaTypeImageManifest {
		t.Errorf("copy with PreserveDigests to a registry refusing OCI: %v, want the OCI type rejected and no fallback", err)
	}
	e2eCheckNoImage(t, dest)
	res := e2eCopy(t, dest, origin, nil)
	rb := e2eVerify(t, dest, nil)
	e2eCheckConverted(t, "fallback to schema2", want, res, rb, manifest.DockerV2Schema2MediaType)
	e2eCheckSameImage(t, fixtures.Image{ManifestDigest: rb.TopDigest, ConfigDigest: want.ConfigDigest, Layers: want.Layers, DiffIDs: want.DiffIDs}, rb.Images[0])

	none := testregistry.Start(t, testregistry.Options{Wrap: e2eRejectManifestTypes(imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType)})
	_, err := copier.Image(ctx, e2eRef(t, "docker://"+none.Host+"/e2e/fallback:v1"), origin, nil)
	if err == nil || !errors.As(err, &rejected) || !strings.Contains(err.Error(), imgspecv1.MediaTypeImageManifest) ||
		!strings.Contains(err.Error(), manifest.DockerV2Schema2MediaType) {
		t.Errorf("copy to a registry refusing every type: %v, want a ManifestTypeRejectedError naming both types", err)
	}
}

// TestE2EStaleCacheMountsUploadInTheirSessions: with a blob-info cache naming a repository the
// registry does not have (deleted, say), every cross-repository mount is refused with an
// upload session, and the blob is uploaded into that session: one POST per blob, no session
// cancelled, the image intact.
func TestE2EStaleCacheMountsUploadInTheirSessions(t *testing.T) {
	t.Parallel()
	l, origin := e2eFixture(t, fixtures.Options{})
	reg := testregistry.Start(t, testregistry.Options{})
	cache := memory.New()
	scope := types.BICTransportScope{Opaque: reg.Host}
	img := l.Images[0]
	blobs := []digest.Digest{img.ConfigDigest}
	for _, b := range img.Layers {
		blobs = append(blobs, b.Digest)
	}
	for _, d := range blobs {
		cache.RecordKnownLocation("docker", scope, d, types.BICLocationReference{Opaque: "gone/repo"})
	}
	dest := e2eRef(t, "docker://"+reg.Host+"/e2e/stale:v1")
	res := e2eCopy(t, dest, origin, &copier.Options{BlobInfoCache: cache})
	if res.ManifestDigest != l.ManifestDigest {
		t.Errorf("wrote %s, want %s", res.ManifestDigest, l.ManifestDigest)
	}
	e2eVerify(t, dest, nil)
	posts, mounts := countRequests(reg, "POST", "/blobs/uploads/"), 0
	for _, r := range reg.Requests() {
		if r.Method == "POST" && strings.Contains(r.RawQuery, "mount=") {
			mounts++
		}
	}
	if mounts != len(blobs) || posts != mounts || countRequests(reg, "DELETE", "/blobs/uploads/") != 0 {
		t.Errorf("%d POSTs (%d mounts), %d DELETEs of sessions; want %d mounts, no other POST, no DELETE",
			posts, mounts, countRequests(reg, "DELETE", "/blobs/uploads/"), len(blobs))
	}
	// The refused locations are forgotten: the cache now names only where the blobs went, so
	// the next copy does not ask the registry for them in gone/repo again.
	for _, d := range blobs {
		got := cache.CandidateLocations("docker", scope, d, false)
		if len(got) != 1 || got[0].Location.Opaque != "e2e/stale" {
			t.Errorf("cache locations of %s: %+v, want only e2e/stale", d, got)
		}
	}
}
