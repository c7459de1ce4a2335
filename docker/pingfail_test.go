package docker

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/types"
)

// TestPingFailureAnswersTheNextClients: a registry that does not answer its ping after all
// retries is not pinged again, with retries, by each client that asks right after (a sync
// into a registry that is down opened one per image, one after the other); once the failure
// is older than pingFailureReuse, a client pings anew.
func TestPingFailureAnswersTheNextClients(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case fail.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path != "/v2/":
			w.WriteHeader(http.StatusNotFound)
		}
	})
	ctx := testContext(t) // retries do not sleep
	retries := 2
	sys := &types.SystemContext{NoCreds: true, RetryTimes: &retries}
	for _, repo := range []string{"a", "b", "c", "d"} {
		_, err := mustParse(t, "//"+srv.host+"/m/"+repo+":v1").(types.ManifestDigester).ManifestDigest(ctx, sys)
		if err == nil || !strings.Contains(err.Error(), "pinging registry") || types.Classify(err) != types.ClassNetwork {
			t.Fatalf("%s: %v, want the ping's failure (network)", repo, err)
		}
	}
	if n := srv.count(http.MethodGet, "/v2/"); n != 1+retries {
		t.Errorf("%d pings for 4 clients, want %d (one attempt and its retries)", n, 1+retries)
	}

	ep, err := sharedEndpoint(sys, srv.host)
	if err != nil {
		t.Fatal(err)
	}
	ep.pingMu.Lock()
	ep.failedAt = time.Now().Add(-pingFailureReuse)
	ep.pingMu.Unlock()
	fail.Store(false)
	_, err = mustParse(t, "//"+srv.host+"/m/e:v1").(types.ManifestDigester).ManifestDigest(ctx, sys)
	if types.Classify(err) != types.ClassNotFound {
		t.Fatalf("after the failure aged: %v, want the registry's answer (not found)", err)
	}
	if n := srv.count(http.MethodGet, "/v2/"); n != 2+retries {
		t.Errorf("%d pings, want one more than before", n)
	}
}
