package tests

import (
	"os"
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
		{"OCI archive read as oci", "oci:" + ociTar, "is a file, not a directory: it holds an OCI image layout in a tar: read it as oci-archive:" + ociTar},
		{"OCI layout read as oci-archive", "oci-archive:examples/hello", "is a directory, not a tar file: it holds an OCI image layout: read it as oci:examples/hello"},
		{"dir image read as docker-archive", "docker-archive:" + dirImage, "read it as dir:" + dirImage},
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

// TestCLIWrongKindOfPath names a file with a transport of directories and a directory with a
// transport of tar files, as a destination: a usage mistake (exit 2) that says what the path
// holds and which reference writes to it, or, when it holds nothing imgcopy reads, what the
// transport expects; nothing is written.
func TestCLIWrongKindOfPath(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	ociTar, dockerTar, plain := filepath.Join(tmp, "hello-oci.tar"), filepath.Join(tmp, "hello-docker.tar"), filepath.Join(tmp, "notes.txt")
	emptyDir := filepath.Join(tmp, "empty")
	mustCLI(t, "--quiet", "oci:examples/hello:latest", "oci-archive:"+ociTar+":latest")
	mustCLI(t, "--quiet", "oci:examples/hello:latest", "docker-archive:"+dockerTar+":hello:latest")
	if err := os.WriteFile(plain, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, dest, want string }{
		{"OCI archive written as oci", "oci:" + ociTar + ":new", "it holds an OCI image layout in a tar: write to it with oci-archive:" + ociTar},
		{"docker archive written as dir", "dir:" + dockerTar, "it holds a docker save archive: write to it with docker-archive:" + dockerTar},
		{"plain file written as oci", "oci:" + plain + ":new", "is a file, not a directory: oci: reads and writes directories"},
		{"layout written as docker-archive", "docker-archive:examples/hello:new:1", "it holds an OCI image layout: write to it with oci:examples/hello"},
		{"empty directory written as oci-archive", "oci-archive:" + emptyDir + ":new", "is a directory, not a tar file: oci-archive: reads and writes tar files"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := treeDigest(t, tmp)
			res := cli(t, "oci:examples/hello:latest", tc.dest)
			if res.code != 2 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", res.code, res.stderr, tc.want)
			}
			if treeDigest(t, tmp) != before {
				t.Errorf("the refused copy changed %s", tmp)
			}
		})
	}
}
