package tests

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

// resetUploads wraps a registry so that the first n blob uploads with a body (PATCH, PUT) of
// at least min bytes read some of it, then reset the connection (n < 0: every one). It counts
// the resets.
type resetUploads struct {
	n, min int64
	resets atomic.Int64
}

func (ru *resetUploads) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upload := (r.Method == http.MethodPatch || r.Method == http.MethodPut) &&
			strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength != 0
		if !upload || r.ContentLength > 0 && r.ContentLength < ru.min || ru.n >= 0 && ru.resets.Load() >= ru.n {
			next.ServeHTTP(w, r)
			return
		}
		ru.resets.Add(1)
		buf := make([]byte, 64<<10)
		_, _ = r.Body.Read(buf) // some of the body is on its way, as when a connection drops mid-blob
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // an RST, not an orderly close
		}
		_ = conn.Close()
	})
}

// TestCLIUploadConnectionReset: a push whose upload connection is reset mid-blob is retried
// with the blob read again from the source (a stream that was read cannot be sent twice), and
// succeeds; one whose uploads keep being reset fails after the retries with a network error
// (exit 7), the tag unwritten. Before, a single reset failed the copy.
func TestCLIUploadConnectionReset(t *testing.T) {
	t.Parallel()
	layout := filepath.Join(t.TempDir(), "src")
	writeBigLayout(t, layout, 6<<20) // above the 4 MiB of recorded upload sessions
	cases := []struct {
		name   string
		resets int64
		code   int
	}{
		{"reset once", 1, 0},
		{"reset twice", 2, 0},
		{"reset always", -1, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ru := &resetUploads{n: tc.resets, min: 1 << 20}
			reg := testregistry.Start(t, testregistry.Options{Wrap: ru.wrap})
			dest := "docker://" + reg.Host + "/reset/up:v1"
			res := cli(t, "--retry-times", "2", "--retry-delay", "1ms", "--dest-tls-verify=false", "oci:"+layout+":v1", dest)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, tc.code, res.stderr)
			}
			if tc.code == 0 {
				if got := ru.resets.Load(); got != tc.resets {
					t.Errorf("%d uploads reset, want %d", got, tc.resets)
				}
				mustCLI(t, "verify", "--quiet", "--tls-verify=false", dest)
				return
			}
			if got := ru.resets.Load(); got != 3 {
				t.Errorf("%d uploads reset, want 3 (a try and 2 retries)", got)
			}
			if !strings.Contains(res.stderr, "uploading blob") {
				t.Errorf("stderr does not name the upload:\n%s", res.stderr)
			}
			if r := cli(t, "inspect", "--tls-verify=false", dest); r.code != 3 {
				t.Errorf("inspect of the failed push: exit %d, want 3 (nothing written)\n%s", r.code, r.stderr)
			}
		})
	}
}
