package tests

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// gnuTime is GNU time, which measures a command's peak RSS (-f %M, in KiB).
const gnuTime = "/usr/bin/time"

// readMaxRSS reads the peak RSS, in bytes, that GNU time wrote to file.
func readMaxRSS(t *testing.T, file string) int64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b)) // "Command exited with non-zero status 1" may come first
	if len(fields) == 0 {
		t.Fatalf("no peak RSS in %q", b)
	}
	kib, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
	if err != nil {
		t.Fatalf("peak RSS in %q: %v", b, err)
	}
	return kib << 10
}

// hostileServer is a registry that answers with what a broken or malicious one might send.
// Every /v2/NAME/... path picks the misbehaviour by its first path element.
func hostileServer(t *testing.T) (host string, tagRequests *atomic.Int64) {
	t.Helper()
	tagRequests = &atomic.Int64{}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/v2/" || p == "/v2":
			w.WriteHeader(http.StatusOK)
		case p == "/token":
			// 50 MiB of "token" with no end in sight.
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"token":"`)
			streamFiller(w, r, 50<<20)
		case strings.HasPrefix(p, "/v2/bigmanifest/"):
			// 100 MiB, streamed without Content-Length so that no header gives it away.
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			_, _ = io.WriteString(w, `{"schemaVersion":2,"annotations":{"x":"`)
			streamFiller(w, r, 100<<20)
		case strings.HasPrefix(p, "/v2/bigtoken/"):
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="hostile"`)
			w.WriteHeader(http.StatusUnauthorized)
		case strings.HasPrefix(p, "/v2/badauth/"):
			w.Header().Set("WWW-Authenticate", `Bearer realm="=,,"\\\"=, ,Basic , realm=`)
			w.Header().Add("WWW-Authenticate", `====, "`)
			w.WriteHeader(http.StatusUnauthorized)
		case strings.HasPrefix(p, "/v2/html/"):
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body>"+
				strings.Repeat("<p>nginx stack trace line</p>\n", 20000)+"</body></html>")
		case p == "/v2/loop/tags/list":
			tagRequests.Add(1)
			w.Header().Set("Link", `</v2/loop/tags/list?n=1&last=a>; rel="next"`)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"name":"loop","tags":["a"]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), tagRequests
}

// streamFiller writes n bytes of 'a' in 64 KiB writes, stopping when the client goes away.
func streamFiller(w http.ResponseWriter, r *http.Request, n int) {
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	for sent := 0; sent < n && r.Context().Err() == nil; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// TestCLIHostileResponses checks that hostile answers end in a clear error, quickly and with
// flat memory (the child's peak RSS): a 100 MiB manifest, a 50 MiB token response, a tag list
// whose Link points to itself forever, a malformed WWW-Authenticate and an HTML page on a 500.
func TestCLIHostileResponses(t *testing.T) {
	t.Parallel()
	host, tagRequests := hostileServer(t)
	fast := []string{"--retry-times", "1", "--retry-delay", "1ms"}
	const maxRSS = 64 << 20 // the binary alone peaks at 15–30 MiB
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"100 MiB manifest", []string{"docker://" + host + "/bigmanifest/app:v1", "dir:" + t.TempDir() + "/d"},
			1, []string{"manifest", "exceeds size limit", "bigmanifest"}},
		{"50 MiB token response", []string{"docker://" + host + "/bigtoken/app:v1", "dir:" + t.TempDir() + "/d"},
			1, []string{"token", "exceeds size limit"}},
		{"tag list linking to itself", []string{"list-tags", "docker://" + host + "/loop"},
			1, []string{"listing tags", "loop", "Link"}},
		{"malformed WWW-Authenticate", []string{"docker://" + host + "/badauth/app:v1", "dir:" + t.TempDir() + "/d"},
			1, []string{"WWW-Authenticate", "malformed", "badauth"}},
		{"HTML error page on a 500", []string{"docker://" + host + "/html/app:v1", "dir:" + t.TempDir() + "/d"},
			1, []string{"500", "html/app"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The rusage of a direct child is no use here: Go starts it with vfork, so its peak
			// RSS includes the test process's own (up to 100 MiB when all tests run). GNU time
			// forks the binary from its own small process and reports the binary's peak alone.
			var wrapper []string
			rssFile := filepath.Join(t.TempDir(), "maxrss")
			if _, err := os.Stat(gnuTime); err == nil {
				wrapper = []string{gnuTime, "-f", "%M", "-o", rssFile}
			}
			c := startChild(t, t.TempDir(), wrapper, append(append([]string{}, fast...), tc.args...)...)
			code, _, stderr := c.wait(30 * time.Second)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not contain %q", stderr, w)
				}
			}
			if len(stderr) > 2000 || strings.Contains(stderr, "<p>") {
				t.Errorf("the error is not one readable line (%d bytes):\n%.2000s", len(stderr), stderr)
			}
			if wrapper == nil {
				t.Logf("%s is missing (bench/install-peers.sh installs it): peak RSS not checked", gnuTime)
			} else if rss := readMaxRSS(t, rssFile); rss > maxRSS {
				t.Errorf("peak RSS %d MiB, want at most %d MiB", rss>>20, maxRSS>>20)
			}
			if n := tagRequests.Load(); strings.HasPrefix(tc.name, "tag list") && n > 10 {
				t.Errorf("list-tags followed the self-referencing Link %d times", n)
			}
		})
	}
}
