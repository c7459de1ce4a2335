package docker

import (
	"net/http"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// TestForeignLayerRefusalExplained: a registry that refuses the URLs of a foreign layer kept
// as a reference (CNCF distribution 2.8's answer, replayed) gets an error that names the layer
// and the flag that stores it instead; a missing ordinary layer keeps the registry's error.
func TestForeignLayerRefusalExplained(t *testing.T) {
	t.Parallel()
	foreign, plain := digest.FromString("foreign layer"), digest.FromString("plain layer")
	body := []byte(`{"schemaVersion":2,"mediaType":"` + manifest.DockerV2Schema2MediaType + `",` +
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"` + digest.FromString("{}").String() + `"},` +
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":13,"digest":"` + foreign.String() + `","urls":["https://example.com/layer"]},` +
		`{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":11,"digest":"` + plain.String() + `"}]}`)
	for _, tc := range []struct {
		name    string
		unknown digest.Digest
		explain bool
	}{
		{name: "foreign layer refused", unknown: foreign, explain: true},
		{name: "ordinary layer missing", unknown: plain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusInternalServerError)
					_, _ = w.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":{}},` +
						`{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"` + tc.unknown.String() + `"}]}`))
				}
			})
			noRetry := 0
			dest, err := mustParse(t, "//"+srv.host+"/a/b:t").NewImageDestination(testContext(t), &types.SystemContext{NoCreds: true, RetryTimes: &noRetry})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dest.Close() })
			err = dest.PutManifest(testContext(t), body, manifest.DockerV2Schema2MediaType, nil)
			if err == nil {
				t.Fatal("manifest accepted")
			}
			explained := strings.Contains(err.Error(), "--include-non-distributable") && strings.Contains(err.Error(), "refused foreign layer "+foreign.String())
			if explained != tc.explain {
				t.Errorf("explained=%v, want %v: %v", explained, tc.explain, err)
			}
			if _, ok := asRegistryError(err); !ok {
				t.Errorf("the registry's error is not kept: %v", err)
			}
		})
	}
}
