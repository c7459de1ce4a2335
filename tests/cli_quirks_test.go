package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// refuseMethod wraps a registry so that requests with method to paths containing part get
// status (and no body), as registries do with HTTP methods they do not serve.
func refuseMethod(method, part string, status int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == method && strings.Contains(r.URL.Path, part) {
				w.WriteHeader(status)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestCLIManifestHEADRefused: registries that refuse HEAD of manifests (Nexus, some proxies:
// 400, 405 or 501) are still synced between (a re-run finds the mirror up to date) and deleted
// in: the digest comes from a GET, as with containerd and crane. A missing tag is still "not
// found" (exit 3).
func TestCLIManifestHEADRefused(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotImplemented} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			src := testregistry.Start(t, testregistry.Options{Wrap: refuseMethod(http.MethodHead, "/manifests/", status)})
			dst := testregistry.Start(t, testregistry.Options{Wrap: refuseMethod(http.MethodHead, "/manifests/", status)})
			mustCLI(t, "--quiet", "oci:examples/hello:latest", "docker://"+src.Host+"/team/hello:v1")

			res := mustCLI(t, "sync", "--src", "docker", "--dest", "docker", src.Host+"/team/hello", dst.Host+"/mirror")
			if !strings.Contains(res.stdout, "1 copied") {
				t.Errorf("sync did not copy the image:\n%s", res.stdout)
			}
			mustCLI(t, "verify", "--quiet", "docker://"+dst.Host+"/mirror/hello:v1")
			again := mustCLI(t, "sync", "--src", "docker", "--dest", "docker", src.Host+"/team/hello", dst.Host+"/mirror")
			if !strings.Contains(again.stdout, "1 up-to-date") {
				t.Errorf("second sync did not find the mirror up to date:\n%s", again.stdout)
			}

			mustCLI(t, "delete", "docker://"+src.Host+"/team/hello:v1")
			if r := cli(t, "delete", "docker://"+src.Host+"/team/hello:v1"); r.code != 3 {
				t.Errorf("deleting a deleted tag: exit %d, want 3 (not found)\n%s", r.code, r.stderr)
			}
		})
	}
}
