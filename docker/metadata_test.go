package docker

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestSlowMetadataBodyTimesOut: a registry that sends a metadata body a byte at a time, each
// well within the read timeout (slow-loris), fails the request once the body's deadline
// (metadataDeadlineFactor read timeouts) passes, with a network-class timeout: a manifest, a
// tag list and a token response alike.
func TestSlowMetadataBodyTimesOut(t *testing.T) {
	t.Parallel()
	trickle := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(5 * time.Millisecond) // each byte well within the read timeout, even on a loaded machine
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
	cases := []struct {
		name string
		path string // the request that trickles
		run  func(ref types.ImageReference, sys *types.SystemContext) error
	}{
		{"manifest", "/manifests/", func(ref types.ImageReference, sys *types.SystemContext) error {
			src, err := ref.NewImageSource(testContext(t), sys)
			if err != nil {
				return err
			}
			defer src.Close()
			_, _, err = src.GetManifest(testContext(t), nil)
			return err
		}},
		{"tag list", "/tags/list", func(ref types.ImageReference, sys *types.SystemContext) error {
			_, err := ref.(types.TagLister).ListTags(testContext(t), sys)
			return err
		}},
		{"token", "/token", func(ref types.ImageReference, sys *types.SystemContext) error {
			_, err := ref.(types.TagLister).ListTags(testContext(t), sys)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var srv *fakeServer
			srv = newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.Contains(r.URL.Path, tc.path):
					trickle(w, r)
				case tc.path == "/token" && r.Header.Get("Authorization") == "":
					w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test"`)
					w.WriteHeader(http.StatusUnauthorized)
				default:
					w.WriteHeader(http.StatusOK)
					_, _ = w.Write([]byte(`{"name":"a/b","tags":["t"]}`))
				}
			})
			retries := 0
			sys := &types.SystemContext{ReadTimeout: 500 * time.Millisecond, RetryTimes: &retries, NoCreds: true, InsecureSkipTLSVerify: types.OptionalBoolTrue}
			err := tc.run(mustParse(t, "//"+srv.host+"/a/b:t"), sys)
			var slow *slowBodyError
			if !errors.As(err, &slow) || types.Classify(err) != types.ClassNetwork || !strings.Contains(err.Error(), "took more than 5s") {
				t.Fatalf("got %v (class %v); want the slow-body timeout, of the network class", err, types.Classify(err))
			}
		})
	}
}
