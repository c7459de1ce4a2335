package tests

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// TestCLIDigestMismatch corrupts one layer of a private copy of the sample (same size, one
// byte changed): the copy fails naming the blob, and the destination layout gets no image.
func TestCLIDigestMismatch(t *testing.T) {
	t.Parallel()
	hello := fixtures.Hello()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "corrupt")
	if err := hello.Write(src); err != nil {
		t.Fatal(err)
	}
	layer := hello.Images[0].Layers[1].Digest
	path := filepath.Join(src, "blobs", "sha256", layer.Encoded())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(tmp, "dest")
	res := cli(t, "--quiet", "oci:"+src+":latest", "oci:"+dest+":latest")
	if res.code != 6 || !strings.Contains(res.stderr, "digest mismatch") || !strings.Contains(res.stderr, layer.String()) {
		t.Errorf("exit %d, stderr %q; want exit 6 naming %s and the mismatch", res.code, res.stderr, layer)
	}
	if res := cli(t, "inspect", "oci:"+dest+":latest"); res.code != 3 {
		t.Errorf("the failed copy left an image at the destination: %s", res.stdout)
	}
	if _, err := os.Stat(filepath.Join(dest, "blobs", "sha256", layer.Encoded())); err == nil {
		t.Errorf("the corrupt blob was stored under its digest")
	}
}

// TestCLIInterrupt sends SIGINT while a layer download hangs: the CLI exits 130 promptly and
// the destination gets no image.
func TestCLIInterrupt(t *testing.T) {
	t.Parallel()
	if cliBuildErr != nil {
		t.Fatal(cliBuildErr)
	}
	blobRequested := make(chan struct{}, 16)
	release := make(chan struct{})
	defer close(release)
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v2/hang/") && strings.Contains(r.URL.Path, "/blobs/sha256:") {
				blobRequested <- struct{}{}
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	image := "docker://" + reg.Host + "/hang/hello:v1"
	mustCLI(t, "--quiet", "--dest-tls-verify=false", "oci:examples/hello:latest", image)

	dest := filepath.Join(t.TempDir(), "dest")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliBinary, "--quiet", "--src-tls-verify=false", image, "oci:"+dest+":latest")
	cmd.Dir = ".."
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-blobRequested:
	case <-ctx.Done():
		t.Fatal("the copy never requested a blob")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit code 130; stderr %q", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr %q does not say it was interrupted", stderr.String())
	}
	if res := cli(t, "inspect", "oci:"+dest+":latest"); res.code != 3 {
		t.Errorf("the interrupted copy left an image at the destination: %s", res.stdout)
	}
}
