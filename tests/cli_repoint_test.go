package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// TestCLITagRepointedDuringCopy moves the source tag to another image while the copy of the
// first is stalled mid-layer: the copy ends with the image whose manifest it read, complete
// and consistent, never the layers of one with the manifest of the other.
func TestCLITagRepointedDuringCopy(t *testing.T) {
	t.Parallel()
	reg := startFaultRegistry(t, testregistry.Options{})
	src, big := crashSource(t, reg, "repoint/app") // linux/arm64
	first := strings.TrimSpace(mustCLI(t, "inspect", "--format", "{{.Digest}}", src).stdout)
	stalled := reg.arm("repoint/app", fault{kind: "blob", blob: big.Digest.String(), limit: int64(len(big.Data) / 2)})
	dest := "oci:" + filepath.Join(t.TempDir(), "layout") + ":v1"
	c := startChild(t, t.TempDir(), nil, "--read-timeout", "1s", "--retry-delay", "1ms", src, dest)
	waitClosed(t, stalled, 30*time.Second, "the stalled layer")
	mustCLI(t, "--quiet", "oci:examples/hello:latest", src) // the tag now names linux/amd64
	if second := strings.TrimSpace(mustCLI(t, "inspect", "--format", "{{.Digest}}", src).stdout); second == first {
		t.Fatal("the tag did not move")
	}
	// The stalled transfer times out and resumes by digest.
	if code, _, stderr := c.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	mustCLI(t, "verify", "--quiet", dest)
	got := strings.TrimSpace(mustCLI(t, "inspect", "--format", "{{.Digest}} {{.Architecture}}", dest).stdout)
	if got != first+" arm64" {
		t.Errorf("the copy holds %q, want the image first read, %s (arm64)", got, first)
	}
}
