package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// quotaHeaders sits in front of the test registry and answers the first manifest GET with
// Docker Hub's rate-limit headers saying that 2 pulls of 100 per 100 s are left, later ones
// with plenty left; it records when each manifest GET arrives.
type quotaHeaders struct {
	mu   gosync.Mutex
	gets []time.Time
	low  time.Time // when the low answer was sent
}

func (q *quotaHeaders) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			q.mu.Lock()
			q.gets = append(q.gets, time.Now())
			remaining := "90;w=100"
			if q.low.IsZero() {
				remaining = "2;w=100"
				q.low = time.Now()
			}
			q.mu.Unlock()
			w.Header().Set("RateLimit-Limit", "100;w=100")
			w.Header().Set("RateLimit-Remaining", remaining)
		}
		next.ServeHTTP(w, r)
	})
}

// TestCLISyncPausesOnLowQuota: a registry reporting fewer pulls left than --rate-limit-min
// pauses the sync's manifest pulls, with a warning, for (min − remaining) × window / limit
// (here 1 s), then the sync completes.
func TestCLISyncPausesOnLowQuota(t *testing.T) {
	t.Parallel()
	q := &quotaHeaders{}
	src := testregistry.Start(t, testregistry.Options{Wrap: q.wrap})
	dst := testregistry.Start(t, testregistry.Options{})
	for _, tag := range []string{"v1", "v2", "v3"} {
		pushSingle(t, src.Host, "team/app", tag, "app-"+tag, "amd64")
	}
	cfg := filepath.Join(t.TempDir(), "sync.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("%s:\n  tls-verify: false\n  repositories:\n    team/app: {}\n", src.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	res := cliIn(t, t.TempDir(), "", "sync", "--rate-limit-min", "3", "--image-parallel", "1", "--config", cfg, "docker://"+dst.Host+"/mirror")
	if res.code != 0 {
		t.Fatalf("sync: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "2 pulls left in the rate-limit window (below the minimum of 3); pausing pulls for 1s") {
		t.Errorf("stderr lacks the pause warning:\n%s", res.stderr)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var after int
	for _, g := range q.gets {
		if g.Sub(q.low) >= time.Second {
			after++
		}
	}
	// Without the pause the whole sync takes a fraction of a second.
	if after == 0 {
		t.Errorf("no manifest GET came 1 s or more after the low quota answer (GETs at %v, low at %v)", q.gets, q.low)
	}
	tags, err := e2eRef(t, "docker://"+dst.Host+"/mirror/app").(types.TagLister).ListTags(syncCtx(t), nil)
	if slices.Sort(tags); err != nil || !slices.Equal(tags, []string{"v1", "v2", "v3"}) {
		t.Errorf("destination tags %v (%v), want v1 v2 v3", tags, err)
	}
}
