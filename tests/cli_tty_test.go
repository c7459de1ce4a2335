package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// ttyRun runs the imgcopy binary with args under a pseudo-terminal, using util-linux
// script(1), and returns what the terminal showed.
func ttyRun(t *testing.T, args ...string) string {
	t.Helper()
	return ttyRunWatching(t, nil, args...)
}

// ttyRunWatching is ttyRun calling watch (when not nil) with everything the terminal showed
// so far, each time it shows more.
func ttyRunWatching(t *testing.T, watch func(shown string), args ...string) string {
	t.Helper()
	if cliBuildErr != nil {
		t.Fatal(cliBuildErr)
	}
	scriptPath, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) from util-linux is not installed; cannot run under a pseudo-terminal")
	}
	quoted := []string{shellQuote(cliBinary)}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	// A fresh pty has no size; give it one so that bars have room.
	command := "stty cols 120 rows 40; " + strings.Join(quoted, " ")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, scriptPath, "-q", "-e", "-c", command, "/dev/null")
	cmd.Dir = ".."
	home := t.TempDir()
	cmd.Env = append(cmd.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"), "TERM=xterm")
	var out bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			out.Write(buf[:n])
			if n > 0 && watch != nil {
				watch(out.String())
			}
			if err != nil {
				return
			}
		}
	}()
	err = cmd.Run()
	pw.Close()
	<-read
	if err != nil {
		t.Fatalf("imgcopy %v under a pty: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// TestCLITerminalShowsBars checks that a copy on a terminal draws progress bars, reports
// skipped blobs as such, and ends with the summary line.
func TestCLITerminalShowsBars(t *testing.T) {
	t.Parallel()
	// Bars are redrawn (with escape sequences) on the refresh tick; the sample copies faster
	// than that, so the first copy reads from a registry that sends the first bytes of each
	// blob and holds the rest until the terminal has shown a redraw (or 30 s have passed: then
	// the check below fails).
	var held atomic.Bool
	redrawn := make(chan struct{})
	var once sync.Once
	slow := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if held.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				w = &firstByteWriter{ResponseWriter: w, release: redrawn}
			}
			next.ServeHTTP(w, r)
		})
	}})
	mustCLI(t, "--dest-tls-verify=false", "oci:examples/hello:latest", "docker://"+slow.Host+"/hello:latest")
	dest := "oci:" + filepath.Join(t.TempDir(), "layout")
	held.Store(true)
	out := ttyRunWatching(t, func(shown string) {
		if strings.Contains(shown, "\x1b[") {
			once.Do(func() { close(redrawn) })
		}
	}, "--src-tls-verify=false", "docker://"+slow.Host+"/hello:latest", dest+":latest")
	for _, want := range []string{"Copying blob sha256:", "KiB", "done", "Wrote sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output does not contain %q:\n%q", want, out)
		}
	}
	if !strings.Contains(out, "\x1b[") {
		t.Errorf("terminal output has no escape sequences (no bars redrawn):\n%q", out)
	}
	out = ttyRun(t, "oci:examples/hello:latest", dest+":again")
	if !strings.Contains(out, "the destination already had the image") {
		t.Errorf("second copy into the layout does not say the image was there:\n%q", out)
	}
	dirDest := "dir:" + filepath.Join(t.TempDir(), "d")
	ttyRun(t, "oci:examples/hello:latest", dirDest)
	out = ttyRun(t, "oci:examples/hello:latest", dirDest)
	if !strings.Contains(out, "skipped: already exists") {
		t.Errorf("dir re-copy does not show skipped blobs:\n%q", out)
	}
}

// firstByteWriter sends the first byte of a response body, then waits for release (at most
// 30 s) before sending the rest.
type firstByteWriter struct {
	http.ResponseWriter
	release <-chan struct{}
	sent    bool
}

func (h *firstByteWriter) Write(p []byte) (int, error) {
	if h.sent || len(p) < 2 {
		return h.ResponseWriter.Write(p)
	}
	h.sent = true
	n, err := h.ResponseWriter.Write(p[:1])
	if err != nil {
		return n, err
	}
	http.NewResponseController(h.ResponseWriter).Flush()
	select {
	case <-h.release:
	case <-time.After(30 * time.Second):
	}
	m, err := h.ResponseWriter.Write(p[1:])
	return n + m, err
}
