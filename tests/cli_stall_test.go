package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// TestCLIStalledRegistry serves headers and part of a body, then stalls until the client goes
// away: a download stalled once resumes and succeeds; one that keeps stalling (a blob, a
// manifest), and an upload the registry stops reading, fail within the read timeout and the
// retries with a timeout error (network class, exit 7), leaving the destination unchanged; an
// upload stalled once is sent again, from a new read of the source, and succeeds.
func TestCLIStalledRegistry(t *testing.T) {
	t.Parallel()
	reg := startFaultRegistry(t, testregistry.Options{})
	fast := []string{"--read-timeout", "300ms", "--retry-times", "1", "--retry-delay", "1ms"}
	cases := []struct {
		name   string
		fault  func(repo, blob string, size int) fault
		upload bool // the stall is at the destination
		code   int
		want   []string
	}{
		{"blob stalls once and resumes", func(repo, blob string, size int) fault {
			return fault{kind: "blob", blob: blob, limit: int64(size / 2)}
		}, false, 0, nil},
		{"blob keeps stalling", func(repo, blob string, size int) fault {
			return fault{kind: "blob", blob: blob, limit: int64(size / 2), repeat: true}
		}, false, 7, []string{"timeout", "--read-timeout", "reading blob"}},
		{"manifest keeps stalling", func(repo, blob string, size int) fault {
			return fault{kind: "manifest", limit: 10, repeat: true}
		}, false, 7, []string{"timeout", "--read-timeout", "manifest"}},
		{"upload stalls", func(repo, blob string, size int) fault {
			return fault{kind: "upload", repeat: true}
		}, true, 7, []string{"timeout", "--read-timeout"}},
		{"upload stalls once", func(repo, blob string, size int) fault {
			return fault{kind: "upload"}
		}, true, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := "stall/" + strings.ReplaceAll(tc.name, " ", "-")
			src, big := crashSource(t, reg, repo)
			base := t.TempDir()
			layout := filepath.Join(base, "layout")
			mustCLI(t, "--quiet", "oci:examples/hello:latest", "oci:"+layout+":other")
			dest := "oci:" + layout + ":new"
			if tc.upload {
				src, dest = "oci:examples/hello:latest", "docker://"+reg.Host+"/"+repo+"-up:v1"
				reg.arm(repo+"-up", tc.fault(repo+"-up", "", 0))
			} else {
				reg.arm(repo, tc.fault(repo, big.Digest.String(), len(big.Data)))
			}
			before := treeDigest(t, layout)
			start := time.Now()
			c := startChild(t, t.TempDir(), nil, append(append([]string{}, fast...), src, dest)...)
			code, _, stderr := c.wait(30 * time.Second)
			if code != tc.code {
				t.Fatalf("exit %d after %v, want %d; stderr:\n%s", code, time.Since(start), tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
			if tc.code != 0 && treeDigest(t, layout) != before {
				t.Errorf("the failed copy changed the destination layout")
			}
			if tc.code == 0 {
				mustCLI(t, "verify", "--quiet", dest)
			}
			if l := leftovers(t, base); len(l) > 0 {
				t.Errorf("temporary files left: %v", l)
			}
		})
	}
}
