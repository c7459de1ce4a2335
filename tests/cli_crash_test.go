package tests

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
)

// faultRegistry is a test registry whose repositories can be told to stall one kind of request
// once: the manifest GET by tag, a GET of blob, or a manifest PUT. A stalled request sends its
// headers and part of its body (half of a blob), then waits until the client goes away.
type faultRegistry struct {
	*testregistry.Registry
	mu     sync.Mutex
	faults map[string]*fault // by repository
	quit   chan struct{}     // closed when the test ends: stalled requests give up
}

type fault struct {
	kind    string // "manifest", "blob", "put-manifest", "upload" (PATCH or PUT of a blob, body unread)
	blob    string // the digest whose GET stalls, for "blob"
	limit   int64  // body bytes sent before the stall
	stalled chan struct{}
	signal  func() // closes stalled once
	repeat  bool   // stall every matching request, not only the first
}

func startFaultRegistry(t *testing.T, opts testregistry.Options) *faultRegistry {
	r := &faultRegistry{faults: map[string]*fault{}, quit: make(chan struct{})}
	opts.Wrap = r.wrap
	r.Registry = testregistry.Start(t, opts)
	t.Cleanup(func() { close(r.quit) }) // runs before the server's cleanup
	return r
}

// arm makes the next matching request of repo stall; the returned channel closes when it does.
func (r *faultRegistry) arm(repo string, f fault) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.stalled = make(chan struct{})
	f.signal = signalOnce(f.stalled)
	r.faults[repo] = &f
	return f.stalled
}

func (r *faultRegistry) disarm(repo string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.faults, repo)
}

var apiPath = regexp.MustCompile(`^/v2/(.+?)/(manifests|blobs)/([^/]+|uploads/.*)$`)

func (r *faultRegistry) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		m := apiPath.FindStringSubmatch(req.URL.Path)
		if m == nil {
			next.ServeHTTP(w, req)
			return
		}
		r.mu.Lock()
		f := r.faults[m[1]]
		match := f != nil && (f.kind == "manifest" && req.Method == http.MethodGet && m[2] == "manifests" && !strings.Contains(m[3], ":") ||
			f.kind == "blob" && req.Method == http.MethodGet && m[2] == "blobs" && m[3] == f.blob ||
			f.kind == "put-manifest" && req.Method == http.MethodPut && m[2] == "manifests" ||
			f.kind == "upload" && (req.Method == http.MethodPatch || req.Method == http.MethodPut) && m[2] == "blobs")
		if match && !f.repeat {
			delete(r.faults, m[1])
		}
		r.mu.Unlock()
		if !match {
			next.ServeHTTP(w, req)
			return
		}
		stalled := f.signal
		if f.kind == "put-manifest" || f.kind == "upload" {
			if f.kind == "put-manifest" {
				_, _ = io.Copy(io.Discard, req.Body)
			}
			stalled()
			select {
			case <-req.Context().Done():
			case <-r.quit:
			}
			return
		}
		stallAfter(next, w, req, f.limit, stalled, r.quit)
	})
}

// crashDest is one destination kind of the crash tests, with another image already in it.
type crashDest struct {
	kind string
	// prepare creates the destination holding the other image under base and returns the
	// destination name of the new image, what to snapshot and the stage-3 lock to hold.
	prepare func(t *testing.T, base string) (dest, snap, lockPath string)
}

func crashDests(reg *faultRegistry, name string) []crashDest {
	other := "oci:examples/hello:latest"
	return []crashDest{
		{"oci", func(t *testing.T, base string) (string, string, string) {
			p := filepath.Join(base, "layout")
			mustCLI(t, "--quiet", other, "oci:"+p+":other")
			return "oci:" + p + ":new", p, filepath.Join(p, "index.json.lock")
		}},
		{"oci-archive", func(t *testing.T, base string) (string, string, string) {
			p := filepath.Join(base, "a.tar")
			mustCLI(t, "--quiet", other, "oci-archive:"+p+":other")
			return "oci-archive:" + p + ":new", p, base
		}},
		{"docker-archive", func(t *testing.T, base string) (string, string, string) {
			p := filepath.Join(base, "d.tar")
			mustCLI(t, "--quiet", other, "docker-archive:"+p+":other:1")
			return "docker-archive:" + p + ":new:1", p, base
		}},
		{"dir", func(t *testing.T, base string) (string, string, string) {
			p := filepath.Join(base, "dir")
			mustCLI(t, "--quiet", other, "dir:"+p)
			return "dir:" + p, p, ""
		}},
		{"registry", func(t *testing.T, base string) (string, string, string) {
			mustCLI(t, "--quiet", other, "docker://"+reg.Host+"/dst/"+name+":other")
			return "docker://" + reg.Host + "/dst/" + name + ":new", "", ""
		}},
	}
}

// crashSource pushes a source image (linux/arm64, unlike the other image the destinations
// hold) to repo and returns its name and its largest layer.
func crashSource(t *testing.T, reg *faultRegistry, repo string) (string, fixtures.Blob) {
	t.Helper()
	l, err := fixtures.Build(fixtures.Options{Platforms: []string{"linux/arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "src")
	if err := l.Write(dir); err != nil {
		t.Fatal(err)
	}
	ref := "docker://" + reg.Host + "/" + repo + ":v1"
	mustCLI(t, "--quiet", "oci:"+dir+":latest", ref)
	big := l.Images[0].Layers[0]
	for _, b := range l.Images[0].Layers {
		if len(b.Data) > len(big.Data) {
			big = b
		}
	}
	return ref, big
}

// holdLock takes an exclusive flock on path (a layout's lock file, an archive's directory), as
// another writer committing would, until release is called.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		f, err = os.Open(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { f.Close() }) }
	t.Cleanup(release)
	return release
}

var lockWaitLine = regexp.MustCompile(`waiting for another writer's lock`)
var blobStoredLine = regexp.MustCompile(`msg="blob (stored|staged)"`)
var manifestWrittenLine = regexp.MustCompile(`msg="manifest written".*instance=false`)

// TestCLIKilled kills the CLI with SIGKILL early (reading the source manifest), mid-layer
// and just before its commit, for every destination kind holding another image, then checks
// that the destination is unchanged (byte for byte), that the same copy run again succeeds,
// and that no temporary file of either run is left, in or beside the destination or under
// --tmpdir, and nothing outside it. Ctrl-C (SIGINT) mid-layer: exit 130, the same guarantees.
func TestCLIKilled(t *testing.T) {
	t.Parallel()
	reg := startFaultRegistry(t, testregistry.Options{})
	// Another registry as the destination, so that blobs are copied rather than mounted.
	dst := startFaultRegistry(t, testregistry.Options{})
	stages := []string{"early", "mid-layer", "before-commit", "sigint"}
	for _, stage := range stages {
		for i, d := range crashDests(dst, "") {
			name := d.kind + "-" + stage
			d = crashDests(dst, name)[i]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				src, big := crashSource(t, reg, "src/"+name)
				srcRepo := "src/" + name
				base, tmp, home := t.TempDir(), t.TempDir(), t.TempDir()
				dest, snap, lockPath := d.prepare(t, base)
				before := treeDigest(t, snap)
				baseNames := dirNames(t, base)
				args := []string{"--debug", "--tmpdir", tmp, "--retry-times", "0", src, dest}

				var stalled chan struct{}
				release := func() {}
				switch {
				case stage == "early":
					stalled = reg.arm(srcRepo, fault{kind: "manifest"})
				case stage == "mid-layer" || stage == "sigint":
					stalled = reg.arm(srcRepo, fault{kind: "blob", blob: big.Digest.String(), limit: int64(len(big.Data) / 2)})
				case d.kind == "registry":
					stalled = dst.arm("dst/"+name, fault{kind: "put-manifest"})
				case lockPath != "":
					release = holdLock(t, lockPath)
				}
				c := startChild(t, home, nil, args...)
				switch {
				case stalled != nil:
					waitClosed(t, stalled, 30*time.Second, "the stalled request")
					if stage != "early" && (d.kind == "dir" || d.kind == "oci") {
						c.waitFor(blobStoredLine, 30*time.Second) // another blob is complete
					}
				case lockPath != "":
					c.waitFor(lockWaitLine, 30*time.Second)
				default:
					c.waitFor(manifestWrittenLine, 30*time.Second)
				}
				if stage == "sigint" {
					c.signal(syscall.SIGINT)
				} else {
					c.signal(syscall.SIGKILL)
				}
				code, _, stderr := c.wait(30 * time.Second)
				release()
				if stage == "sigint" {
					if code != 130 || !strings.Contains(stderr, "imgcopy: interrupted") {
						t.Errorf("after SIGINT: exit %d, want 130 and \"interrupted\"; stderr:\n%s", code, stderr)
					}
					if l := leftovers(t, base, tmp); len(l) > 0 {
						t.Errorf("the interrupted run left temporary files: %v", l)
					}
				}
				if snap != "" {
					// Killed while committing without a lock to stop it (dir:), the copy may
					// have finished: then the image must be complete.
					finished := d.kind == "dir" && stage == "before-commit" && cli(t, "verify", "--quiet", dest).code == 0
					if after := treeDigest(t, snap); after != before && !finished {
						t.Errorf("the %s destination changed after the run was stopped (%s)", d.kind, stage)
					}
				} else if res := cli(t, "inspect", "--raw", dest); res.code != 3 {
					t.Errorf("the stopped run left the image at the destination: exit %d", res.code)
				}
				reg.disarm(srcRepo)
				dst.disarm("dst/" + name)

				mustCLI(t, "--quiet", "--tmpdir", tmp, src, dest)
				mustCLI(t, "verify", "--quiet", dest)
				if l := leftovers(t, base, tmp); len(l) > 0 {
					t.Errorf("temporary files left after the second run: %v", l)
				}
				if got := dirNames(t, base); !slices.Equal(got, baseNames) {
					t.Errorf("the directory holding the destination has %v, had %v", got, baseNames)
				}
				if got := dirNames(t, tmp); len(got) > 0 {
					t.Errorf("--tmpdir holds %v", got)
				}
				if d.kind != "dir" { // the other image is still there
					other := strings.Replace(dest, ":new", ":other", 1)
					mustCLI(t, "inspect", "--raw", other)
				}
			})
		}
	}
}
