package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

// TestLocalDestinationKeepsWhatArrived interrupts (cancels, as Ctrl-C does) a pull from a
// registry into each local destination halfway through a 24 MiB layer, and runs it again
// (issue 18). The destination keeps the layer where it writes it anyway, so the layer is
// written once: an OCI layout or a dir: stages it in the resume directory's partial download
// (while it streams there is no temporary file of it in the destination's staging); an
// archive writes it into its region of the unfinished tar, with a fill record saying how much
// of it is in (no partial download while it streams). Once interrupted, the partial download
// holds what arrived (an archive copies it there as it stops) and nothing is left beside the
// destination. The second run asks the registry only for the rest, and leaves neither
// staging nor partial downloads.
func TestLocalDestinationKeepsWhatArrived(t *testing.T) {
	t.Parallel()
	const size = 24 << 20
	img := startProxiedImage(t, "keep", size)
	layer, imageDigest := img.layers[0], img.digest

	for _, kind := range []string{"oci", "dir", "docker-archive", "oci-archive"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			src, rt := img.repo(t, "keep/"+kind)
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			dest := e2eRef(t, map[string]string{
				"oci": "oci:" + out + ":v1", "dir": "dir:" + out,
				"docker-archive": "docker-archive:" + out + ":keep/x:v1", "oci-archive": "oci-archive:" + out + ":v1",
			}[kind])
			archive := strings.HasSuffix(kind, "-archive")
			stagingGlob := filepath.Join(out, ".imgcopy-staging-*")
			if archive {
				stagingGlob = filepath.Join(dir, ".imgcopy-staging-*")
			}
			resumeDir := t.TempDir()
			sys := &types.SystemContext{Resume: &types.ResumeOptions{Dir: resumeDir}}
			opts := &copier.Options{SourceCtx: sys, DestinationCtx: sys}
			partial := filepath.Join(resumeDir, "blobs", "sha256-"+layer.Encoded())

			rt.holdAfter(size / 2)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := copier.Image(ctx, dest, src, opts); done <- err }()
			waitClosed(t, rt.reached, time.Minute, "the hold point")
			if archive {
				// Wait until the layer's fill record counts some of what went by (the copy
				// may still be reading what the proxy sent before the hold).
				fill := filepath.Join(stagingGlob, ".fill-"+layer.Encoded())
				waitFor(t, time.Minute, "a fill record", func() bool { return keptByFill(t, fill) > 0 })
				if fi, err := os.Stat(partial); err == nil {
					t.Errorf("the layer has a partial download too (%d bytes) while it streams into the archive", fi.Size())
				}
			} else {
				// The layer streams into the partial download, not into a temporary file of
				// the destination's staging as well. (The config's temporary file may be
				// there, being synced: a layer's would hold the half of it that went by.)
				tmp, _ := filepath.Glob(filepath.Join(stagingGlob, ".tmp-blob-*"))
				for _, f := range tmp {
					if fi, err := os.Stat(f); err == nil && fi.Size() >= 1<<20 {
						t.Errorf("temporary blob file of %d bytes in the destination's staging while the layer streams: %s", fi.Size(), f)
					}
				}
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted copy: %v, want context.Canceled", err)
			}
			close(rt.release)
			waitClosed(t, rt.ended, time.Minute, "the held request")
			first, _ := rt.take()
			k := fileSize(t, partial)
			if k <= 0 || k > first {
				t.Fatalf("partial download holds %d bytes after %d went by; want some of them", k, first)
			}
			if left, _ := filepath.Glob(stagingGlob); len(left) != 0 {
				t.Errorf("staging left after the interruption: %v", left)
			}

			res, err := copier.Image(context.Background(), dest, src, opts)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			second, ranges := rt.take()
			t.Logf("first run: %d bytes, %d kept; second run: %d bytes, ranges %q, resumed %d", first, k, second, ranges, res.BytesResumed)
			if want := fmt.Sprintf("bytes=%d-", k); !slices.ContainsFunc(ranges, func(r string) bool { return r == want || r == fmt.Sprintf("%s%d", want, size-1) }) {
				t.Errorf("ranges %q: none starts at the %d kept bytes", ranges, k)
			}
			if second > size-k+4096 {
				t.Errorf("second run moved %d bytes, want the %d the first did not keep (and the config)", second, size-k)
			}
			if res.BytesResumed < k {
				t.Errorf("BytesResumed %d, want at least the %d kept", res.BytesResumed, k)
			}
			if res.ManifestDigest != imageDigest {
				t.Errorf("wrote manifest %s, want %s", res.ManifestDigest, imageDigest)
			}
			if entries, _ := os.ReadDir(filepath.Join(resumeDir, "blobs")); len(entries) != 0 {
				t.Errorf("resume directory still holds %d partial downloads", len(entries))
			}
			if left, _ := filepath.Glob(stagingGlob); len(left) != 0 {
				t.Errorf("staging left: %v", left)
			}
			switch kind {
			case "oci", "dir":
				checkBlobFile(t, map[string]string{"oci": filepath.Join(out, "blobs", "sha256", layer.Encoded()), "dir": filepath.Join(out, layer.Encoded())}[kind], layer)
			default:
				if rb := e2eVerify(t, dest, nil); rb.TopDigest != imageDigest {
					t.Errorf("the archive holds %s, want %s", rb.TopDigest, imageDigest)
				}
			}
		})
	}
}

// keptByFill returns the count of the one fill record matching glob (see internal/tarstore),
// 0 when there is none yet.
func keptByFill(t *testing.T, glob string) int64 {
	t.Helper()
	m, _ := filepath.Glob(glob)
	if len(m) == 0 {
		return 0
	}
	if len(m) > 1 {
		t.Fatalf("fill records %v, want one", m)
	}
	b, err := os.ReadFile(m[0])
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0
	}
	n, _ := strconv.ParseInt(f[2], 10, 64)
	return n
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout.C:
			t.Fatalf("%s did not appear in %v", what, d)
		}
	}
}
