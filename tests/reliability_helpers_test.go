package tests

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// child is the imgcopy binary running in the background, so that a test can signal, stall or
// starve it while it works. Its stderr is scanned line by line for waitFor.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr bytes.Buffer
	lines  chan string
	done   chan struct{}
	err    error
}

// startChild starts the binary with args in home (see cliEnv); wrapper, when set, is a
// command line that runs it (e.g. prlimit). The child is killed when the test ends.
func startChild(t *testing.T, home string, wrapper []string, args ...string) *child {
	t.Helper()
	if cliBuildErr != nil {
		t.Fatal(cliBuildErr)
	}
	argv := append(append(append([]string{}, wrapper...), cliBinary), args...)
	c := &child{t: t, cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan string, 4096), done: make(chan struct{})}
	c.cmd.Dir = ".."
	c.cmd.Env = cliEnv(home)
	c.cmd.Stdout = &c.stdout
	pr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.Write(sc.Bytes())
			c.stderr.WriteByte('\n')
			c.mu.Unlock()
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		c.err = c.cmd.Wait()
		close(c.lines)
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// waitFor waits until a line of stderr matches re, or the deadline passes.
func (c *child) waitFor(re *regexp.Regexp, d time.Duration) {
	c.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("the child ended before printing a line matching %q; stderr:\n%s", re, c.stderrText())
			}
			if re.MatchString(l) {
				return
			}
		case <-timer.C:
			c.t.Fatalf("no line matching %q within %v; stderr:\n%s", re, d, c.stderrText())
		}
	}
}

func (c *child) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

func (c *child) signal(sig os.Signal) {
	c.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
}

// wait waits for the child to end, at most d, and returns its exit code (-1 when a signal
// ended it), its peak RSS in bytes and its stderr.
func (c *child) wait(d time.Duration) (code int, maxRSS int64, stderr string) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		_ = c.cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump shows where it hangs
		<-c.done
		c.t.Fatalf("imgcopy %v still ran after %v; stderr:\n%s", c.cmd.Args[1:], d, c.stderrText())
	}
	var exitErr *exec.ExitError
	switch {
	case c.err == nil:
	case errors.As(c.err, &exitErr):
	default:
		c.t.Fatalf("waiting for imgcopy: %v", c.err)
	}
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSS = ru.Maxrss * 1024 // KiB on Linux
	}
	stderr = c.stderrText()
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic:") {
		c.t.Errorf("imgcopy %v panicked or dumped goroutines:\n%s", c.cmd.Args[1:], stderr)
	}
	return c.cmd.ProcessState.ExitCode(), maxRSS, stderr
}

// treeDigest hashes every file, directory and symlink under root (root itself may be a
// file), except temporary names (internal/staging), so that two calls compare a layout, a
// dir: image or an archive byte for byte, ignoring what a killed run may leave for the next
// one to remove.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				h.Write([]byte("absent"))
				return nil
			}
			return err
		}
		if staging.IsTemporary(e.Name()) && p != root {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		h.Write([]byte(rel + "\x00" + e.Type().String() + "\x00"))
		if e.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			h.Write(sum[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// leftovers lists the temporary files and directories (internal/staging names) under the
// given roots.
func leftovers(t *testing.T, roots ...string) []string {
	t.Helper()
	var found []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && staging.IsTemporary(e.Name()) {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// stallWriter passes a response through until limit body bytes were written, then stalls:
// it reports the request on stalled and waits for the client to go away.
type stallWriter struct {
	http.ResponseWriter
	ctx     context.Context
	left    int64
	stalled func()
	once    sync.Once
	quit    <-chan struct{}
}

func (w *stallWriter) Write(b []byte) (int, error) {
	if int64(len(b)) <= w.left {
		w.left -= int64(len(b))
		return w.ResponseWriter.Write(b)
	}
	n, _ := w.ResponseWriter.Write(b[:w.left])
	w.left = 0
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	w.once.Do(w.stalled)
	select {
	case <-w.ctx.Done():
	case <-w.quit:
	}
	return n, http.ErrAbortHandler
}

// Flush implements http.Flusher.
func (w *stallWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// stallAfter serves r through next but stalls the response after limit body bytes (0: right
// after the headers), calling stalled once. The stall ends when the client goes away or quit
// is closed.
func stallAfter(next http.Handler, w http.ResponseWriter, r *http.Request, limit int64, stalled func(), quit <-chan struct{}) {
	sw := &stallWriter{ResponseWriter: w, ctx: r.Context(), left: limit, stalled: stalled, quit: quit}
	if limit == 0 {
		w.WriteHeader(http.StatusOK)
		sw.Flush()
		stalled()
		select {
		case <-r.Context().Done():
		case <-quit:
		}
		return
	}
	next.ServeHTTP(sw, r)
}

// signalOnce returns a function that closes ch the first time it is called.
func signalOnce(ch chan struct{}) func() {
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// waitClosed waits for ch, failing the test after d.
func waitClosed(t *testing.T, ch chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// testImage is an image writeImageLayout stores: its manifest and its layer descriptors.
type testImage struct {
	manifest []byte
	digest   digest.Digest
	desc     imgspecv1.Descriptor
}

// tarLayer returns an uncompressed tar holding one file of size bytes derived from seed.
func tarLayer(t testing.TB, seed string, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(len(seed)), uint64(fnvHash(seed))))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := tw.WriteHeader(&tar.Header{Name: seed, Mode: 0o644, Size: int64(size), ModTime: fixtures.Created, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(data)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fnvHash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// buildImage writes the blobs of a linux/amd64 OCI image with the given uncompressed layers
// (a layer may be listed twice) into the layout at dir, and returns it; it does not touch
// index.json.
func buildImage(t testing.TB, dir string, layers [][]byte) testImage {
	t.Helper()
	var cfg imgspecv1.Image
	cfg.OS, cfg.Architecture, cfg.Created = "linux", "amd64", &fixtures.Created
	cfg.RootFS.Type = "layers"
	m := imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest}
	for _, l := range layers {
		d := writeBlob(t, dir, l)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d)
		m.Layers = append(m.Layers, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageLayer, Digest: d, Size: int64(len(l))})
	}
	cb, _ := json.Marshal(cfg)
	m.Config = imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: writeBlob(t, dir, cb), Size: int64(len(cb))}
	mb, _ := json.Marshal(m)
	d := writeBlob(t, dir, mb)
	return testImage{manifest: mb, digest: d, desc: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: d, Size: int64(len(mb))}}
}

// writeBlob stores b in the layout at dir.
func writeBlob(t testing.TB, dir string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// writeIndex writes oci-layout and an index.json listing entries (name -> descriptor).
func writeIndex(t testing.TB, dir string, entries map[string]imgspecv1.Descriptor) {
	t.Helper()
	idx := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		d := entries[n]
		d.Annotations = map[string]string{imgspecv1.AnnotationRefName: n}
		idx.Manifests = append(idx.Manifests, d)
	}
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}
