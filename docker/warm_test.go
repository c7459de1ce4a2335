package docker

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

// TestWarmPingsBeforeTheOpen: Warm pings the registry by itself, and the destination opened
// afterwards uses that ping instead of sending its own.
func TestWarmPingsBeforeTheOpen(t *testing.T) {
	t.Parallel()
	pinged := make(chan struct{}, 10)
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pinged <- struct{}{}
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	ctx := testContext(t)
	ref := mustParse(t, "//"+srv.host+"/a/b:v1")
	stop := ref.(types.ReferenceWarmer).Warm(ctx, anonSys())
	defer stop()
	select {
	case <-pinged:
	case <-time.After(10 * time.Second):
		t.Fatal("Warm sent no ping")
	}
	dest, err := ref.NewImageDestination(ctx, anonSys())
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if _, err := dest.(types.ManifestChecker).HasManifest(ctx, digest.FromString("x")); err != nil {
		t.Fatal(err)
	}
	if n := srv.count(http.MethodGet, "/v2/"); n != 1 {
		t.Errorf("%d pings, want the warm-up's only", n)
	}
	if n := srv.count(http.MethodHead, "/manifests/"); n != 2 {
		t.Errorf("%d manifest HEADs, want 2 (by tag, by digest)", n)
	}
}

// TestWarmFailureReportedOnce: when the warm-up ping fails after its retries, the first
// request of the copy reports that failure instead of pinging (and retrying) again; once
// the warm-up is stopped, a later client pings anew.
func TestWarmFailureReportedOnce(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	pinged := make(chan struct{}, 10)
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pinged <- struct{}{}
		}
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
	ref := mustParse(t, "//"+srv.host+"/a/b:v1")
	stop := ref.(types.ReferenceWarmer).Warm(ctx, sys)
	for range 1 + retries {
		select {
		case <-pinged:
		case <-time.After(10 * time.Second):
			t.Fatal("Warm did not ping and retry")
		}
	}
	dest, err := ref.NewImageDestination(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	_, err = dest.(types.ManifestChecker).HasManifest(ctx, digest.FromString("x"))
	if err == nil || !strings.Contains(err.Error(), "pinging registry") {
		t.Fatalf("HasManifest: %v, want the ping's failure", err)
	}
	if n := srv.count(http.MethodGet, "/v2/"); n != 1+retries {
		t.Errorf("%d pings, want %d (one attempt and its retries)", n, 1+retries)
	}
	stop()

	fail.Store(false)
	again, err := ref.NewImageDestination(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := again.(types.ManifestChecker).HasManifest(ctx, digest.FromString("x")); err != nil {
		t.Fatalf("after the warm-up ended: %v", err)
	}
}
