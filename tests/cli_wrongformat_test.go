package tests

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIWrongFormat names a path with the transport of another format: a usage mistake
// (exit 2) that says which reference reads the path, not damage (verify's exit 6) or a
// missing image (exit 3), and not an empty store that verifies with 0 problems.
func TestCLIWrongFormat(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	ociTar, dirImage := filepath.Join(tmp, "hello-oci.tar"), filepath.Join(tmp, "hello-dir")
	mustCLI(t, "--quiet", "oci:examples/hello:latest", "oci-archive:"+ociTar+":latest")
	mustCLI(t, "--quiet", "oci:examples/hello:latest", "dir:"+dirImage)
	cases := []struct{ name, ref, want string }{
		{"OCI archive read as docker-archive", "docker-archive:" + ociTar, "read it as oci-archive:" + ociTar},
		{"OCI layout read as dir", "dir:examples/hello", "read it as oci:examples/hello"},
		{"dir image read as oci", "oci:" + dirImage, "read it as dir:" + dirImage},
	}
	for _, tc := range cases {
		for _, cmd := range [][]string{{"verify", tc.ref}, {tc.ref, "dir:" + filepath.Join(t.TempDir(), "out")}, {"inspect", tc.ref}} {
			t.Run(tc.name+"/"+cmd[0], func(t *testing.T) {
				t.Parallel()
				res := cli(t, cmd...)
				if res.code != 2 || !strings.Contains(res.stderr, tc.want) || strings.Contains(res.stderr, "check the name") {
					t.Errorf("exit %d, stderr %q; want exit 2 and %q, and no advice to check the name", res.code, res.stderr, tc.want)
				}
			})
		}
	}
}
