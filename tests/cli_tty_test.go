package tests

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// ttyRun runs the imgcopy binary with args under a pseudo-terminal, using util-linux
// script(1), and returns what the terminal showed.
func ttyRun(t *testing.T, args ...string) string {
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
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("imgcopy %v under a pty: %v\n%s", args, err, out)
	}
	return string(out)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// TestCLITerminalShowsBars checks that a copy on a terminal draws progress bars, reports
// skipped blobs as such, and ends with the summary line.
func TestCLITerminalShowsBars(t *testing.T) {
	t.Parallel()
	// Bars are redrawn (with escape sequences) on the refresh tick; the sample copies faster
	// than that, so the first copy reads from a registry that answers blob requests slowly.
	slow := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				time.Sleep(300 * time.Millisecond) // longer than the bars' refresh interval
			}
			next.ServeHTTP(w, r)
		})
	}})
	mustCLI(t, "--dest-tls-verify=false", "oci:examples/hello:latest", "docker://"+slow.Host+"/hello:latest")
	dest := "oci:" + filepath.Join(t.TempDir(), "layout")
	out := ttyRun(t, "--src-tls-verify=false", "docker://"+slow.Host+"/hello:latest", dest+":latest")
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
