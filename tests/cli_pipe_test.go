package tests

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCLIArchivesThroughPipes writes archives to /dev/stdout (a pipe here) and reads one from
// /dev/stdin, as `imgcopy … docker-archive:/dev/stdout | ssh host imgcopy docker-archive:/dev/stdin …`
// does: what comes out of the pipe is the whole archive, which verifies and holds the image;
// /dev/stdout stays what it was (it was once replaced by a regular file, and nothing went
// down the pipe).
func TestCLIArchivesThroughPipes(t *testing.T) {
	t.Parallel()
	before, lerr := os.Lstat("/dev/stdout")
	want := cli(t, "inspect", "--raw", "oci:examples/hello:latest")
	cases := []struct {
		name, dest string
		gunzip     bool
		read       string // the transport reading the saved output
	}{
		{"docker-archive", "docker-archive:/dev/stdout:hello:latest", false, "docker-archive:"},
		{"oci-archive, gzip", "oci-archive:/dev/stdout:latest", true, "oci-archive:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--quiet", "oci:examples/hello:latest", tc.dest}
			if tc.gunzip {
				args = append([]string{"--quiet", "--archive-compress", "gzip"}, args[1:]...)
			}
			res := cli(t, args...)
			if res.code != 0 || len(res.stdout) == 0 {
				t.Fatalf("exit %d, %d bytes on stdout, stderr %q; want the archive on stdout", res.code, len(res.stdout), res.stderr)
			}
			out := []byte(res.stdout)
			if tc.gunzip {
				zr, err := gzip.NewReader(bytes.NewReader(out))
				if err != nil {
					t.Fatalf("stdout is not gzip: %v", err)
				}
				if out, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			saved := filepath.Join(t.TempDir(), "saved.tar")
			if err := os.WriteFile(saved, out, 0o644); err != nil {
				t.Fatal(err)
			}
			if res := cli(t, "verify", "--quiet", tc.read+saved); res.code != 0 {
				t.Errorf("the archive from stdout does not verify: exit %d, %s", res.code, res.stderr)
			}
			// And back through stdin.
			layout := filepath.Join(t.TempDir(), "layout")
			if res := cliWithInput(t, string(out), "--quiet", tc.read+"/dev/stdin", "oci:"+layout+":latest"); res.code != 0 {
				t.Fatalf("reading the archive from stdin: exit %d, %s", res.code, res.stderr)
			}
			if got := cli(t, "inspect", "--raw", "oci:"+layout+":latest"); got.stdout != want.stdout {
				t.Errorf("the image read back from stdin has another manifest")
			}
		})
	}
	t.Cleanup(func() {
		after, err := os.Lstat("/dev/stdout")
		if lerr == nil && (err != nil || after.Mode()&fs.ModeType != before.Mode()&fs.ModeType) {
			t.Errorf("/dev/stdout changed: %v, %v (was %v)", after, err, before.Mode())
		}
	})
}
