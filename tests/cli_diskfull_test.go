package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// mountTmpfs mounts a tmpfs of size bytes at a new directory, or reports false where mounting
// is not permitted; it is unmounted when the test ends.
func mountTmpfs(t *testing.T, size string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Logf("cannot mount a tmpfs here (%v: %s): only the file-size limit is tested", err, strings.TrimSpace(string(out)))
		return "", false
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir, true
}

// TestCLIDiskFull copies an image with a 2 MiB layer into every local destination kind, each
// holding another image, once under a 1 MiB file-size limit (RLIMIT_FSIZE: write fails with
// EFBIG, as Go ignores SIGXFSZ) and once onto a 1 MiB tmpfs where one can be mounted
// (ENOSPC): the copy fails with "file too large" / "no space left on device" naming the
// destination, which is left unchanged, with no partial or temporary file.
func TestCLIDiskFull(t *testing.T) {
	t.Parallel()
	srcDir := filepath.Join(t.TempDir(), "src")
	img := buildImage(t, srcDir, [][]byte{tarLayer(t, "big", 2<<20)})
	writeIndex(t, srcDir, map[string]imgspecv1.Descriptor{"big": img.desc})
	src := "oci:" + srcDir + ":big"
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is needed: %v", err)
	}
	kinds := []struct{ kind, name, dest string }{
		{"oci", "layout", "oci:%s:new"},
		{"oci-archive", "a.tar", "oci-archive:%s:new"},
		{"docker-archive", "d.tar", "docker-archive:%s:new:1"},
		{"dir", "dir", "dir:%s"},
	}
	for _, limit := range []string{"fsize", "tmpfs"} {
		for _, k := range kinds {
			t.Run(limit+" "+k.kind, func(t *testing.T) {
				t.Parallel()
				base, wrapper, want := t.TempDir(), []string{prlimit, "--fsize=1048576"}, "file too large"
				if limit == "tmpfs" {
					var ok bool
					if base, ok = mountTmpfs(t, "1m"); !ok {
						t.Skip("no tmpfs")
					}
					wrapper, want = nil, "no space left on device"
				}
				p := filepath.Join(base, k.name)
				dest := strings.Replace(k.dest, "%s", p, 1)
				other := strings.Replace(strings.Replace(dest, ":new", ":other", 1), "dir:", "dir:", 1)
				mustCLI(t, "--quiet", "oci:examples/hello:latest", other)
				before, names := treeDigest(t, p), dirNames(t, base)
				tmp := t.TempDir()
				c := startChild(t, t.TempDir(), wrapper, "--tmpdir", tmp, src, dest)
				code, _, stderr := c.wait(time.Minute)
				if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, p) {
					t.Errorf("exit %d, want 1 with %q naming %s; stderr:\n%s", code, want, p, stderr)
				}
				if treeDigest(t, p) != before {
					t.Errorf("the destination changed")
				}
				if got := dirNames(t, base); !slices.Equal(got, names) {
					t.Errorf("beside the destination: %v, before: %v", got, names)
				}
				if l := leftovers(t, base, tmp); len(l) > 0 {
					t.Errorf("temporary files left: %v", l)
				}
				if _, err := os.Stat(filepath.Join(tmp)); err != nil {
					t.Error(err)
				}
			})
		}
	}
}
