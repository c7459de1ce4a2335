package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// The tests of issue 17: a copy killed with SIGKILL part way through a large blob, run again,
// continues where it stopped. A proxy in front of the in-process registry counts the bytes of
// every transfer and holds one at a chosen point, where the test kills the CLI; no test sleeps.

// resumeBlobSize is the size of the one layer of the resume tests' image.
const resumeBlobSize = 256 << 20

// resumeProxy sits in front of the test registry (its Wrap handler). Per repository it counts
// the body bytes of blob GETs and of upload PATCHes, records the Range of blob GETs, can
// refuse open-ended ranges with 416, and can hold a transfer once a number of bytes went by.
type resumeProxy struct {
	mu     sync.Mutex
	routes map[string]*proxyRoute // by "/v2/REPO/"
}

func (p *resumeProxy) route(repo string) *proxyRoute {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.routes == nil {
		p.routes = map[string]*proxyRoute{}
	}
	rt := &proxyRoute{}
	p.routes["/v2/"+repo+"/"] = rt
	return rt
}

func (p *resumeProxy) find(path string) *proxyRoute {
	p.mu.Lock()
	defer p.mu.Unlock()
	for prefix, rt := range p.routes {
		if strings.HasPrefix(path, prefix) {
			return rt
		}
	}
	return nil
}

func (p *resumeProxy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := p.find(r.URL.Path)
		switch {
		case rt == nil:
			next.ServeHTTP(w, r)
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:"):
			rng := r.Header.Get("Range")
			rt.mu.Lock()
			rt.ranges = append(rt.ranges, rng)
			rt.paths = append(rt.paths, r.URL.Path)
			refuse := rt.refuseOpenRanges && strings.HasSuffix(rng, "-")
			rt.mu.Unlock()
			if refuse {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			cw := &holdingWriter{ResponseWriter: w, rt: rt, limit: rt.limitFor(r.URL.Path)}
			next.ServeHTTP(cw, r)
			rt.endHeld(cw.held)
		case r.Method == http.MethodPatch:
			hr := &holdingReader{ReadCloser: r.Body, rt: rt, limit: rt.limitFor(r.URL.Path)}
			r.Body = hr
			next.ServeHTTP(w, r)
			rt.endHeld(hr.held)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// proxyRoute is the proxy's state for one repository.
type proxyRoute struct {
	mu               sync.Mutex
	bytes            int64 // blob GET response and PATCH request body bytes
	ranges           []string
	paths            []string // of blob GETs
	refuseOpenRanges bool
	holdAt           int64                  // > 0: hold the first armed request that passes this many bytes
	arm              func(path string) bool // which requests may be held; nil: all
	reached          chan struct{}          // closed when the hold point is reached
	release          chan struct{}          // closed by the test once it killed the client
	ended            chan struct{}          // closed when the held request's handler returned
}

// holdAfter arms the hold point.
func (rt *proxyRoute) holdAfter(n int64) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.holdAt = n
	rt.reached, rt.release, rt.ended = make(chan struct{}), make(chan struct{}), make(chan struct{})
}

// take returns the counts so far and starts new ones.
func (rt *proxyRoute) take() (int64, []string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n, r := rt.bytes, rt.ranges
	rt.bytes, rt.ranges, rt.paths = 0, nil, nil
	return n, r
}

// fetched counts the blob GETs of d since the last take.
func (rt *proxyRoute) fetched(d digest.Digest) int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := 0
	for _, p := range rt.paths {
		if strings.HasSuffix(p, "/"+d.String()) {
			n++
		}
	}
	return n
}

// limitFor returns the hold point of a new request: holdAt when it is armed, else 0.
func (rt *proxyRoute) limitFor(path string) int64 {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.holdAt > 0 && (rt.arm == nil || rt.arm(path)) {
		return rt.holdAt
	}
	return 0
}

// pass counts n bytes about to go by in a request that passed done bytes already, and returns
// how many may go before its hold point (limit, 0 for none), and whether they reach it (the
// caller then holds). Only one request is held.
func (rt *proxyRoute) pass(done int64, n int, limit int64) (int, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if limit > 0 && rt.holdAt > 0 && done+int64(n) >= limit {
		n = int(limit - done)
		rt.bytes += int64(n)
		rt.holdAt = 0
		return n, true
	}
	rt.bytes += int64(n)
	return n, false
}

// hold tells the test the hold point is reached and waits until it killed the client.
func (rt *proxyRoute) hold() {
	close(rt.reached)
	<-rt.release
}

func (rt *proxyRoute) endHeld(held bool) {
	if held {
		close(rt.ended)
	}
}

var errHeld = errors.New("transfer held by the test proxy")

// holdingWriter counts a blob response and holds it at the route's hold point.
type holdingWriter struct {
	http.ResponseWriter
	rt          *proxyRoute
	limit, done int64
	held        bool
}

func (w *holdingWriter) Write(b []byte) (int, error) {
	if w.held {
		return 0, errHeld
	}
	n, reached := w.rt.pass(w.done, len(b), w.limit)
	w.done += int64(n)
	m, err := w.ResponseWriter.Write(b[:n])
	if reached {
		w.held = true
		http.NewResponseController(w.ResponseWriter).Flush()
		w.rt.hold()
		return m, errHeld
	}
	return m, err
}

// holdingReader counts a PATCH body and holds it at the route's hold point. Once released,
// it passes on whatever the dead client's connection still delivers.
type holdingReader struct {
	io.ReadCloser
	rt          *proxyRoute
	limit, done int64
	held        bool
}

func (r *holdingReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	if r.held {
		r.rt.mu.Lock()
		r.rt.bytes += int64(n)
		r.rt.mu.Unlock()
		return n, err
	}
	m, reached := r.rt.pass(r.done, n, r.limit)
	r.done += int64(m)
	if reached {
		r.held = true
		r.rt.hold()
		r.rt.mu.Lock()
		r.rt.bytes += int64(n - m) // the rest of this read goes through after all
		r.rt.mu.Unlock()
	}
	return n, err
}

// cliProc is a running imgcopy.
type cliProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

func startCLI(t *testing.T, home string, args ...string) *cliProc {
	t.Helper()
	if cliBuildErr != nil {
		t.Fatal(cliBuildErr)
	}
	p := &cliProc{done: make(chan error, 1)}
	p.cmd = exec.Command(cliBinary, args...)
	p.cmd.Dir = ".."
	p.cmd.Env = cliEnv(home)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// killAtHold runs imgcopy in home and kills it with SIGKILL once rt reached its hold point; it
// returns when the held request is over at the registry.
func killAtHold(t *testing.T, rt *proxyRoute, home string, args ...string) {
	t.Helper()
	killAtHoldWhen(t, rt, nil, home, args...)
}

// killAtHoldWhen is killAtHold that, once the hold point is reached, also waits for ready to
// hold (checked every few milliseconds, for at most the same two minutes) before the kill:
// for what the process finishes in the background, such as a staged blob's fsync and name.
func killAtHoldWhen(t *testing.T, rt *proxyRoute, ready func() bool, home string, args ...string) {
	t.Helper()
	p := startCLI(t, home, args...)
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	select {
	case <-rt.reached:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("imgcopy ended (%v) before the hold point\nstdout: %s\nstderr: %s", err, p.stdout.String(), p.stderr.String())
	case <-timeout.C:
		t.Fatal("the transfer did not reach the hold point in 2 minutes")
	}
	if ready != nil {
		tick := time.NewTicker(5 * time.Millisecond)
		for !ready() {
			select {
			case <-tick.C:
			case <-timeout.C:
				t.Fatal("the process held at the hold point did not get ready in 2 minutes")
			}
		}
		tick.Stop()
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-p.done
	p.done <- err
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("imgcopy was not killed by the signal: %v", err)
	}
	close(rt.release)
	select {
	case <-rt.ended:
	case <-timeout.C:
		t.Fatal("the held request did not end")
	}
}

// writeBigLayout writes an OCI layout (tag v1) with one incompressible layer of size bytes,
// stored uncompressed (valid registry content, kept as it is by every copy), and returns the
// layer's digest.
func writeBigLayout(t *testing.T, dir string, size int64) digest.Digest {
	t.Helper()
	return writeLayersLayout(t, dir, size)[0]
}

// writeLayersLayout writes an OCI layout (tag v1) with one incompressible layer of each size
// and returns their digests.
func writeLayersLayout(t *testing.T, dir string, sizes ...int64) []digest.Digest {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	writeBlob := func(r io.Reader) imgspecv1.Descriptor {
		f, err := os.CreateTemp(blobs, "tmp-")
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
		if err := os.Rename(f.Name(), filepath.Join(blobs, d.Encoded())); err != nil {
			t.Fatal(err)
		}
		return imgspecv1.Descriptor{Digest: d, Size: n}
	}
	var layers []imgspecv1.Descriptor
	var digests []digest.Digest
	var diffIDs []string
	for i, size := range sizes {
		layer := writeBlob(io.LimitReader(rand.NewChaCha8([32]byte{17, byte(i)}), size))
		layer.MediaType = imgspecv1.MediaTypeImageLayer
		layers, digests = append(layers, layer), append(digests, layer.Digest)
		diffIDs = append(diffIDs, fmt.Sprintf("%q", layer.Digest))
	}
	config := writeBlob(strings.NewReader(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}`, strings.Join(diffIDs, ","))))
	config.MediaType = imgspecv1.MediaTypeImageConfig
	m := imgspecv1.Manifest{MediaType: imgspecv1.MediaTypeImageManifest, Config: config, Layers: layers}
	m.SchemaVersion = 2
	mb, _ := json.Marshal(m)
	md := writeBlob(bytes.NewReader(mb))
	md.MediaType = imgspecv1.MediaTypeImageManifest
	md.Annotations = map[string]string{imgspecv1.AnnotationRefName: "v1"}
	idx := imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{md}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	for name, b := range map[string][]byte{"index.json": ib, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return digests
}

// keptFiles lists what a resume directory holds (partial downloads and upload records).
func keptFiles(t *testing.T, home string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(home, "cache", "imgcopy", "resume")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(path, root+"/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkBlobFile hashes the file at path and compares it with d.
func checkBlobFile(t *testing.T, path string, d digest.Digest) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := d.Algorithm().Digester()
	if _, err := io.Copy(h.Hash(), f); err != nil {
		t.Fatal(err)
	}
	if h.Digest() != d {
		t.Errorf("%s holds %s, want %s", path, h.Digest(), d)
	}
}

// jsonDone returns the final "done" object of --progress json output.
func jsonDone(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var done map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &done); err != nil || done["event"] != "done" {
		t.Fatalf("last output line %q is not the done event (%v)", lines[len(lines)-1], err)
	}
	return done
}

// TestCLIResumeAfterKill kills imgcopy (SIGKILL) at 60 % of a 256 MiB blob and runs it again:
// the second run moves at most 45 % of the blob (counted at the proxy), the result verifies,
// and nothing is left in the resume directory. Downloads (plain, and from a registry that
// refuses open-ended ranges), a download whose kept part was altered between the runs, and an
// upload.
func TestCLIResumeAfterKill(t *testing.T) {
	t.Parallel()
	proxy := &resumeProxy{}
	reg := testregistry.Start(t, testregistry.Options{Filesystem: true, Wrap: proxy.wrap})
	layoutDir := filepath.Join(t.TempDir(), "layout")
	layer := writeBigLayout(t, layoutDir, resumeBlobSize)
	src := "oci:" + layoutDir + ":v1"
	base := "docker://" + reg.Host + "/resume/base:v1"
	imageDigest := e2eCopy(t, e2eRef(t, base), e2eRef(t, src), nil).ManifestDigest
	holdAt := int64(resumeBlobSize) * 6 / 10
	maxSecond := int64(resumeBlobSize) * 45 / 100

	t.Run("download", func(t *testing.T) {
		for _, tc := range []struct {
			name             string
			refuseOpenRanges bool
			alter            bool
		}{
			{name: "plain"},
			{name: "open-ended ranges refused", refuseOpenRanges: true},
			{name: "kept part altered", alter: true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				repo := "resume/dl-" + strings.ReplaceAll(tc.name, " ", "-")
				e2eCopy(t, e2eRef(t, "docker://"+reg.Host+"/"+repo+":v1"), e2eRef(t, base), nil) // a mount
				rt := proxy.route(repo)
				rt.refuseOpenRanges = tc.refuseOpenRanges
				home, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
				args := []string{"--progress", "json", "--src-tls-verify=false", "docker://" + reg.Host + "/" + repo + ":v1", "oci:" + out + ":v1"}

				rt.holdAfter(holdAt)
				partial := filepath.Join(home, "cache", "imgcopy", "resume", "blobs", "sha256-"+layer.Encoded())
				// The kill waits until imgcopy has read what the proxy sent before the hold and
				// kept it (all but its last, unflushed record buffer): on a loaded machine it can
				// be many MiB behind, still in socket buffers, when the hold is reached.
				caughtUp := func() bool {
					fi, err := os.Stat(partial)
					return err == nil && fi.Size() >= holdAt-1<<20
				}
				killAtHoldWhen(t, rt, caughtUp, home, args...)
				first, _ := rt.take()
				kept := fileSize(t, partial)
				t.Logf("first run: %d bytes through the proxy, %d kept (%.1f %%)", first, kept, 100*float64(kept)/resumeBlobSize)
				if tc.alter {
					f, err := os.OpenFile(partial, os.O_WRONLY, 0)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := f.WriteAt([]byte("altered"), kept/3); err != nil {
						t.Fatal(err)
					}
					f.Close()
				}

				res := cliIn(t, home, "", args...)
				if res.code != 0 {
					t.Fatalf("second run: exit %d\nstderr: %s", res.code, res.stderr)
				}
				second, ranges := rt.take()
				done := jsonDone(t, res.stdout)
				t.Logf("second run: %d bytes (%.1f %%), ranges %q, done %v", second, 100*float64(second)/resumeBlobSize, ranges, done)
				if tc.alter {
					// The kept part is read, fails verification and is thrown away; the blob
					// comes again in full.
					if done["resumesDiscarded"] != float64(1) || !strings.Contains(res.stderr, "did not verify") {
						t.Errorf("the altered kept part was not reported: done %v, stderr %s", done, res.stderr)
					}
					if second < resumeBlobSize {
						t.Errorf("second run moved %d bytes, want the whole blob again", second)
					}
				} else {
					if second > maxSecond {
						t.Errorf("second run moved %d bytes of the %d-byte blob, want at most 45 %% (%d)", second, resumeBlobSize, maxSecond)
					}
					// The killed run may also have staged the small config (it is copied
					// alongside the layers), which the second run takes over too.
					if resumed, _ := done["bytesResumed"].(float64); int64(resumed) < kept || int64(resumed) > kept+4096 {
						t.Errorf("bytesResumed %v, want the %d kept bytes (and at most the config's)", done["bytesResumed"], kept)
					}
				}
				if want := fmt.Sprintf("bytes=%d-%d", kept, resumeBlobSize-1); tc.refuseOpenRanges && !slices.Contains(ranges, want) {
					t.Errorf("ranges %q: no closed range %q after the 416", ranges, want)
				}
				if files := keptFiles(t, home); len(files) != 0 {
					t.Errorf("resume files left: %v", files)
				}
				if done["digest"] != imageDigest.String() {
					t.Errorf("wrote manifest %v, want %s", done["digest"], imageDigest)
				}
				checkBlobFile(t, filepath.Join(out, "blobs", "sha256", layer.Encoded()), layer)
			})
		}
	})

	t.Run("upload", func(t *testing.T) {
		repo := "resume/up"
		rt := proxy.route(repo)
		home := t.TempDir()
		dest := "docker://" + reg.Host + "/" + repo + ":v1"
		args := []string{"--progress", "json", "--dest-tls-verify=false", src, dest}

		rt.holdAfter(holdAt)
		killAtHold(t, rt, home, args...)
		first, _ := rt.take()
		t.Logf("first run: %d bytes through the proxy", first)
		if records, _ := os.ReadDir(filepath.Join(home, "cache", "imgcopy", "resume", "uploads")); len(records) != 1 {
			t.Fatalf("upload records after the kill: %d, want 1", len(records))
		}

		res := cliIn(t, home, "", args...)
		if res.code != 0 {
			t.Fatalf("second run: exit %d\nstderr: %s", res.code, res.stderr)
		}
		second, _ := rt.take()
		done := jsonDone(t, res.stdout)
		t.Logf("second run: %d bytes (%.1f %%), done %v", second, 100*float64(second)/resumeBlobSize, done)
		if second > maxSecond {
			t.Errorf("second run sent %d bytes of the %d-byte blob, want at most 45 %% (%d)", second, resumeBlobSize, maxSecond)
		}
		// What was sent is what the registry lacked of the layer, plus the small config.
		if resumed, _ := done["bytesResumed"].(float64); int64(resumed)+second < resumeBlobSize || int64(resumed)+second > resumeBlobSize+4096 {
			t.Errorf("bytesResumed %v + %d sent: want the blob's %d bytes (and the config)", done["bytesResumed"], second, resumeBlobSize)
		}
		if files := keptFiles(t, home); len(files) != 0 {
			t.Errorf("resume files left: %v", files)
		}
		// The registry checked the digest of what it holds when the upload was completed.
		if done["digest"] != imageDigest.String() {
			t.Errorf("wrote manifest %v, want %s", done["digest"], imageDigest)
		}
		resp, err := http.Head(reg.URL + "/v2/" + repo + "/blobs/" + layer.String())
		if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != resumeBlobSize {
			t.Errorf("HEAD of the uploaded layer: %v %v", resp, err)
		}
	})
}

// TestCLIResumeRegistryToRegistry kills a registry-to-registry copy (SIGKILL) at 60 % of the
// upload of a 256 MiB blob and runs it again: both ends continue, the download from its
// partial download (kept although the destination records its upload session, since not
// every registry continues one) and the upload in the recorded session, so that the second
// run moves at most 45 % of the blob each way; the result verifies and nothing is left in
// the resume directory.
func TestCLIResumeRegistryToRegistry(t *testing.T) {
	t.Parallel()
	srcProxy, destProxy := &resumeProxy{}, &resumeProxy{}
	srcReg := testregistry.Start(t, testregistry.Options{Filesystem: true, Wrap: srcProxy.wrap})
	reg := testregistry.Start(t, testregistry.Options{Filesystem: true, Wrap: destProxy.wrap})
	layoutDir := filepath.Join(t.TempDir(), "layout")
	layer := writeBigLayout(t, layoutDir, resumeBlobSize)
	src := "docker://" + srcReg.Host + "/resume/rr:v1"
	imageDigest := e2eCopy(t, e2eRef(t, src), e2eRef(t, "oci:"+layoutDir+":v1"), nil).ManifestDigest
	down := srcProxy.route("resume/rr")
	repo := "resume/rr-dest"
	up := destProxy.route(repo)
	home := t.TempDir()
	args := []string{"--progress", "json", "--src-tls-verify=false", "--dest-tls-verify=false", src, "docker://" + reg.Host + "/" + repo + ":v1"}

	up.holdAfter(int64(resumeBlobSize) * 6 / 10)
	killAtHold(t, up, home, args...)
	down.take()
	up.take()
	if files := keptFiles(t, home); len(files) != 2 {
		t.Fatalf("resume files after the kill: %v, want a partial download and an upload record", files)
	}
	res := cliIn(t, home, "", args...)
	if res.code != 0 {
		t.Fatalf("second run: exit %d\nstderr: %s", res.code, res.stderr)
	}
	downloaded, _ := down.take()
	sent, _ := up.take()
	t.Logf("second run: %d bytes downloaded, %d sent (%.1f %%, %.1f %%); done %v", downloaded, sent,
		100*float64(downloaded)/resumeBlobSize, 100*float64(sent)/resumeBlobSize, jsonDone(t, res.stdout))
	for what, n := range map[string]int64{"downloaded": downloaded, "sent": sent} {
		if n > int64(resumeBlobSize)*45/100 {
			t.Errorf("second run %s %d bytes of the %d-byte blob, want at most 45 %%", what, n, resumeBlobSize)
		}
	}
	if files := keptFiles(t, home); len(files) != 0 {
		t.Errorf("resume files left: %v", files)
	}
	if done := jsonDone(t, res.stdout); done["digest"] != imageDigest.String() {
		t.Errorf("wrote manifest %v, want %s", done["digest"], imageDigest)
	}
	resp, err := http.Head(reg.URL + "/v2/" + repo + "/blobs/" + layer.String())
	if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != resumeBlobSize {
		t.Errorf("HEAD of the copied layer: %v %v", resp, err)
	}
}

// TestCLIResumeLocalStaging kills a copy from a registry into each local transport (SIGKILL)
// while the second of two layers downloads, after the first was verified and staged, then
// runs it again: the staged layer is taken over (not fetched again, counted as resumed), the
// second layer continues from its partial download (from what the unfinished tar holds of it,
// for an archive), and no staging directory is left behind.
func TestCLIResumeLocalStaging(t *testing.T) {
	t.Parallel()
	proxy := &resumeProxy{}
	reg := testregistry.Start(t, testregistry.Options{Filesystem: true, Wrap: proxy.wrap})
	layoutDir := filepath.Join(t.TempDir(), "layout")
	sizes := []int64{2 << 20, 24 << 20}
	layers := writeLayersLayout(t, layoutDir, sizes...)
	base := "docker://" + reg.Host + "/resume/local:v1"
	imageDigest := e2eCopy(t, e2eRef(t, base), e2eRef(t, "oci:"+layoutDir+":v1"), nil).ManifestDigest
	// staged is the name a layout or dir: gives a blob in its staging directory once the blob
	// is verified and durable (before that, the blob would not be taken over: a SIGKILL in
	// between loses it, and the test must not kill there). Archives salvage blobs from the
	// unfinished tar by hashing them (""); they wait for the held layer's fill record instead,
	// which says how much of it the unfinished tar holds.
	cases := []struct {
		transport string
		dest      func(dir string) (name, stagingParent string)
		staged    string
	}{
		{"oci", func(dir string) (string, string) { return "oci:" + dir + "/layout:v1", dir + "/layout" }, "sha256-" + layers[0].Encoded()},
		{"dir", func(dir string) (string, string) { return "dir:" + dir + "/dir", dir + "/dir" }, layers[0].Encoded()},
		{"oci-archive", func(dir string) (string, string) { return "oci-archive:" + dir + "/img.tar:v1", dir }, ""},
		{"docker-archive", func(dir string) (string, string) { return "docker-archive:" + dir + "/img.tar:resume/local:v1", dir }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.transport, func(t *testing.T) {
			t.Parallel()
			repo := "resume/local-" + tc.transport
			e2eCopy(t, e2eRef(t, "docker://"+reg.Host+"/"+repo+":v1"), e2eRef(t, base), nil) // a mount
			rt := proxy.route(repo)
			var mu sync.Mutex
			seen := map[string]bool{}
			rt.arm = func(path string) bool { // the second layer to start
				mu.Lock()
				defer mu.Unlock()
				for _, l := range layers {
					if strings.HasSuffix(path, "/"+l.String()) {
						seen[l.String()] = true
						return len(seen) == 2
					}
				}
				return false
			}
			rt.holdAfter(sizes[1] / 2)
			home, dir := t.TempDir(), t.TempDir()
			dest, stagingParent := tc.dest(dir)
			args := []string{"--progress", "json", "--image-parallel-copies", "1", "--src-tls-verify=false", "docker://" + reg.Host + "/" + repo + ":v1", dest}
			ready := func() bool {
				m, _ := filepath.Glob(filepath.Join(stagingParent, ".imgcopy-staging-*", tc.staged))
				return len(m) == 1
			}
			if tc.staged == "" {
				ready = func() bool {
					return keptByFill(t, filepath.Join(stagingParent, ".imgcopy-staging-*", ".fill-"+layers[1].Encoded())) > 0
				}
			}
			killAtHoldWhen(t, rt, ready, home, args...)
			rt.take()
			if left, _ := filepath.Glob(filepath.Join(stagingParent, ".imgcopy-staging-*")); len(left) != 1 {
				t.Fatalf("staging after the kill: %v, want one directory", left)
			}

			res := cliIn(t, home, "", args...)
			if res.code != 0 {
				t.Fatalf("second run: exit %d\nstderr: %s", res.code, res.stderr)
			}
			done := jsonDone(t, res.stdout)
			if done["digest"] != imageDigest.String() {
				t.Errorf("wrote manifest %v, want %s", done["digest"], imageDigest)
			}
			refetched := rt.fetched(layers[0]) + rt.fetched(layers[1])
			resumed, _ := done["bytesResumed"].(float64)
			t.Logf("second run: %d layer request(s), done %v", refetched, done)
			// The layer staged before the kill is taken over (counted as resumed) and not
			// requested again; the held one continues from its partial download.
			if refetched != 1 || int64(resumed) <= sizes[0] {
				t.Errorf("second run requested the layers %d time(s) and resumed %v bytes; want 1 request, and more than the staged %d bytes resumed", refetched, done["bytesResumed"], sizes[0])
			}
			if left, _ := filepath.Glob(filepath.Join(stagingParent, ".imgcopy-staging-*")); len(left) != 0 {
				t.Errorf("staging left behind: %v", left)
			}
			if files := keptFiles(t, home); len(files) != 0 {
				t.Errorf("resume files left: %v", files)
			}
			if v := cliIn(t, home, "", "verify", strings.TrimSuffix(dest, ":resume/local:v1")); v.code != 0 {
				t.Errorf("imgcopy verify %s: exit %d\n%s%s", dest, v.code, v.stdout, v.stderr)
			}
		})
	}
}
