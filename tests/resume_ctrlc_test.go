package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// TestInterruptedPullKeepsCompleteLayers interrupts (cancels, as Ctrl-C does) a pull from a
// registry into an OCI layout and a dir: once two layers are complete, verified and staged and
// the third is held halfway. The complete layers move to the resume directory whole (they
// were removed with the staging), the third keeps what arrived, and nothing is left in or
// beside the destination. The second run fetches neither complete layer, only the rest of the
// third, and writes an image that verifies. A kept layer altered on disk in between is still
// verified when read: the second run discards it, fetches that layer, and succeeds.
func TestInterruptedPullKeepsCompleteLayers(t *testing.T) {
	t.Parallel()
	sizes := []int64{resume.MinSize + 1<<20, resume.MinSize + 2<<20, 8 << 20}
	img := startProxiedImage(t, "ctrlc", sizes...)
	complete, held := img.layers[:2], img.layers[2]

	for _, tc := range []struct {
		name, kind string
		alter      bool // a byte of the second complete layer kept in the resume directory
	}{{"oci", "oci", false}, {"dir", "dir", false}, {"oci, kept layer altered", "oci", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind := tc.kind
			src, rt := img.repo(t, "ctrlc/"+strings.NewReplacer(",", "", " ", "-").Replace(tc.name))
			rt.arm = func(path string) bool { return strings.HasSuffix(path, "/"+held.String()) }
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			dest := e2eRef(t, map[string]string{"oci": "oci:" + out + ":v1", "dir": "dir:" + out}[kind])
			staged := func(d digest.Digest) string { // a blob's name in the destination's staging
				if kind == "oci" {
					return "sha256-" + d.Encoded()
				}
				return d.Encoded()
			}
			resumeDir := t.TempDir()
			sys := &types.SystemContext{Resume: &types.ResumeOptions{Dir: resumeDir}}
			opts := &copier.Options{SourceCtx: sys, DestinationCtx: sys}
			partial := func(d digest.Digest) string { return filepath.Join(resumeDir, "blobs", "sha256-"+d.Encoded()) }

			rt.holdAfter(sizes[2] / 2)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := copier.Image(ctx, dest, src, opts); done <- err }()
			waitClosed(t, rt.reached, time.Minute, "the hold point")
			for _, d := range complete { // verified, and renamed into the staging directory
				waitFor(t, time.Minute, "staged layer "+d.Encoded()[:12], func() bool {
					m, _ := filepath.Glob(filepath.Join(out, ".imgcopy-staging-*", staged(d)))
					return len(m) == 1
				})
			}
			interruptHeld(t, cancel, done, rt)

			for i, d := range complete {
				if fi, err := os.Stat(partial(d)); err != nil || fi.Size() != sizes[i] {
					t.Errorf("complete layer %d in the resume directory: %v, %v; want all %d bytes", i, fi, err, sizes[i])
				}
			}
			if k := fileSize(t, partial(held)); k <= 0 || k >= sizes[2] {
				t.Errorf("the resume directory holds %d bytes of the held layer, want some of its %d", k, sizes[2])
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("the interrupted copy left %v beside the destination", left)
			}

			wantFetched, wantResumed, wantDiscarded := []int{0, 0}, sizes[0]+sizes[1], 0
			if tc.alter {
				flipByte(t, partial(complete[1]), sizes[1]/2)
				wantFetched[1], wantResumed, wantDiscarded = 1, sizes[0], 1
			}

			res, err := copier.Image(context.Background(), dest, src, opts)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			for i, d := range complete {
				if n := rt.fetched(d); n != wantFetched[i] {
					t.Errorf("the second run fetched complete layer %d %d times, want %d", i, n, wantFetched[i])
				}
			}
			if n := rt.fetched(held); n != 1 {
				t.Errorf("the second run fetched the held layer %d times, want once", n)
			}
			if res.BytesResumed < wantResumed || res.ResumesDiscarded != wantDiscarded {
				t.Errorf("BytesResumed %d, ResumesDiscarded %d; want at least %d (the complete layers kept intact), %d", res.BytesResumed, res.ResumesDiscarded, wantResumed, wantDiscarded)
			}
			if rb := e2eVerify(t, dest, nil); rb.TopDigest != img.digest {
				t.Errorf("the destination holds %s, want %s", rb.TopDigest, img.digest)
			}
			if entries, _ := os.ReadDir(filepath.Join(resumeDir, "blobs")); len(entries) != 0 {
				t.Errorf("the resume directory still holds %d partial downloads", len(entries))
			}
		})
	}
}

// TestClosedDestinationKeepsStagedBlobs: an OCI layout or dir: destination closed without a
// commit moves the large blobs it staged (whether staged in the resume directory first or
// not) into the resume directory, where the next destination offers each whole
// (KeepsPartialBlob); small blobs are not kept, and with resuming off nothing is. Nothing is
// left where the destination was. (Without fsync a staged blob gets its name at once; with it,
// TestInterruptedPullKeepsCompleteLayers waits for the name.)
func TestClosedDestinationKeepsStagedBlobs(t *testing.T) {
	t.Parallel()
	asked := bytes.Repeat([]byte("asked about "), resume.MinSize/8)
	notAsked := bytes.Repeat([]byte("not asked about "), resume.MinSize/8)
	small := []byte("a small blob")
	for _, tc := range []struct {
		kind   string
		resume bool
	}{{"oci", true}, {"dir", true}, {"oci", false}, {"dir", false}} {
		t.Run(tc.kind+map[bool]string{true: "", false: " without resuming"}[tc.resume], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			parent, resumeDir := t.TempDir(), t.TempDir()
			ref := e2eRef(t, map[string]string{"oci": "oci:", "dir": "dir:"}[tc.kind]+filepath.Join(parent, "out"))
			sys := &types.SystemContext{NoFsync: true}
			if tc.resume {
				sys.Resume = &types.ResumeOptions{Dir: resumeDir}
			}
			dest, err := ref.NewImageDestination(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			info := func(b []byte) types.BlobInfo { return types.BlobInfo{Digest: digest.FromBytes(b), Size: int64(len(b))} }
			if keeps, _, _ := dest.(types.PartialBlobKeeper).KeepsPartialBlob(info(asked)); keeps != tc.resume {
				t.Fatalf("KeepsPartialBlob: %v, want %v", keeps, tc.resume)
			}
			for _, b := range [][]byte{asked, notAsked, small} {
				if _, err := dest.PutBlob(ctx, bytes.NewReader(b), info(b), types.PutBlobOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := dest.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("the closed destination left %v", left)
			}
			kept, _ := os.ReadDir(filepath.Join(resumeDir, "blobs"))
			if want := map[bool]int{true: 2}[tc.resume]; len(kept) != want {
				t.Fatalf("the resume directory holds %v, want %d blobs", kept, want)
			}
			if !tc.resume {
				return
			}
			next, err := ref.NewImageDestination(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			defer next.Close()
			for _, b := range [][]byte{asked, notAsked} {
				keeps, prefix, n := next.(types.PartialBlobKeeper).KeepsPartialBlob(info(b))
				if prefix != nil {
					prefix.Close()
				}
				if !keeps || n != int64(len(b)) {
					t.Errorf("the next destination offers %d bytes of %s (keeps %v), want all %d", n, info(b).Digest, keeps, len(b))
				}
			}
		})
	}
}

// proxiedImage is an image in a test registry behind a resumeProxy, with one incompressible
// layer of each size asked for.
type proxiedImage struct {
	proxy  *resumeProxy
	host   string
	base   string // docker://HOST/NAME/base:v1
	layers []digest.Digest
	digest digest.Digest // of the manifest
}

// startProxiedImage starts a registry behind a resumeProxy and pushes the image to
// NAME/base:v1.
func startProxiedImage(t *testing.T, name string, sizes ...int64) proxiedImage {
	t.Helper()
	img := proxiedImage{proxy: &resumeProxy{}}
	reg := testregistry.Start(t, testregistry.Options{Filesystem: true, Wrap: img.proxy.wrap})
	img.host, img.base = reg.Host, "docker://"+reg.Host+"/"+name+"/base:v1"
	layoutDir := filepath.Join(t.TempDir(), "layout")
	img.layers = writeLayersLayout(t, layoutDir, sizes...)
	img.digest = e2eCopy(t, e2eRef(t, img.base), e2eRef(t, "oci:"+layoutDir+":v1"), nil).ManifestDigest
	return img
}

// repo puts the image in repository repo too (a mount, not counted) and returns it as a
// source, with the proxy's route for that repository.
func (img proxiedImage) repo(t *testing.T, repo string) (types.ImageReference, *proxyRoute) {
	t.Helper()
	src := e2eRef(t, "docker://"+img.host+"/"+repo+":v1")
	e2eCopy(t, src, e2eRef(t, img.base), nil)
	return src, img.proxy.route(repo)
}

// TestInterruptedPullIntoArchiveKeepsCompleteLayers is TestInterruptedPullKeepsCompleteLayers
// for the archives: interrupted once two layers are complete and the third is held halfway,
// the copy leaves its unfinished tar (with the complete layers) beside the archive, as a
// killed one would, and the third layer's first bytes in the resume directory. The second run
// takes the complete layers from the tar instead of fetching them, fetches only the rest of
// the third, writes an archive that verifies, and leaves nothing else behind.
func TestInterruptedPullIntoArchiveKeepsCompleteLayers(t *testing.T) {
	t.Parallel()
	sizes := []int64{resume.MinSize + 1<<20, resume.MinSize + 2<<20, 8 << 20}
	img := startProxiedImage(t, "ctrlca", sizes...)
	complete, held := img.layers[:2], img.layers[2]
	for _, kind := range []string{"docker-archive", "oci-archive"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			src, rt := img.repo(t, "ctrlca/"+kind)
			rt.arm = func(path string) bool { return strings.HasSuffix(path, "/"+held.String()) }
			parent := t.TempDir()
			archive := filepath.Join(parent, "out.tar")
			dest := e2eRef(t, map[string]string{"docker-archive": "docker-archive:" + archive + ":app:v1", "oci-archive": "oci-archive:" + archive + ":v1"}[kind])
			resumeDir := t.TempDir()
			sys := &types.SystemContext{Resume: &types.ResumeOptions{Dir: resumeDir}}
			completed := make(chan digest.Digest, len(sizes))
			opts := &copier.Options{SourceCtx: sys, DestinationCtx: sys, Progress: func(ev copier.ProgressEvent) {
				if ev.Kind == copier.EventBlobDone && ev.Size >= resume.MinSize {
					completed <- ev.Digest
				}
			}}

			rt.holdAfter(sizes[2] / 2)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := copier.Image(ctx, dest, src, opts); done <- err }()
			waitClosed(t, rt.reached, time.Minute, "the hold point")
			for range complete {
				select {
				case <-completed:
				case <-time.After(time.Minute):
					t.Fatal("timed out waiting for the complete layers")
				}
			}
			interruptHeld(t, cancel, done, rt)

			left, _ := os.ReadDir(parent)
			if len(left) != 1 || !strings.HasPrefix(left[0].Name(), ".imgcopy-staging-") {
				t.Errorf("beside the archive after the interruption: %v, want the unfinished tar's staging directory alone", left)
			}
			if k := fileSize(t, filepath.Join(resumeDir, "blobs", "sha256-"+held.Encoded())); k <= 0 || k >= sizes[2] {
				t.Errorf("the resume directory holds %d bytes of the held layer, want some of its %d", k, sizes[2])
			}

			res, err := copier.Image(context.Background(), dest, src, opts)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			for i, d := range complete {
				if n := rt.fetched(d); n != 0 {
					t.Errorf("the second run fetched complete layer %d %d times, want none", i, n)
				}
			}
			if n := rt.fetched(held); n != 1 {
				t.Errorf("the second run fetched the held layer %d times, want once", n)
			}
			if want := sizes[0] + sizes[1]; res.BytesResumed < want {
				t.Errorf("BytesResumed %d, want at least %d (the complete layers taken from the tar)", res.BytesResumed, want)
			}
			if rb := e2eVerify(t, dest, nil); rb.TopDigest != img.digest {
				t.Errorf("the archive holds %s, want %s", rb.TopDigest, img.digest)
			}
			if left, _ := os.ReadDir(parent); len(left) != 1 || left[0].Name() != "out.tar" {
				t.Errorf("beside the archive after the second run: %v, want out.tar alone", left)
			}
		})
	}
}

// interruptHeld cancels a copy whose request rt holds (as Ctrl-C does), checks that it ended
// as interrupted, then lets the held request end and forgets the route's counts so far.
func interruptHeld(t *testing.T, cancel context.CancelFunc, done <-chan error, rt *proxyRoute) {
	t.Helper()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted copy: %v, want context.Canceled", err)
	}
	close(rt.release)
	waitClosed(t, rt.ended, time.Minute, "the held request")
	rt.take()
}
