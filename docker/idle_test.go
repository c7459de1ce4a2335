package docker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgcopy/imgcopy/types"
)

// TestCloseIdleConnections: after a client's request the connection stays open in the shared
// pool; CloseIdleConnections closes it, so that no connection (and no goroutine of
// net/http's) outlives a program's copies.
func TestCloseIdleConnections(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	served := map[net.Conn]bool{}     // connections that served a request
	closed := make(chan struct{}, 16) // one per such connection closed
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served[r.Context().Value(connKey{}).(net.Conn)] = true
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if s == http.StateClosed && served[c] {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	sys := &types.SystemContext{InsecureSkipTLSVerify: types.OptionalBoolTrue}
	if err := CheckAuth(context.Background(), sys, host); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(served)
	mu.Unlock()
	if n == 0 || len(closed) > 0 {
		t.Fatalf("%d connections served CheckAuth, %d closed by themselves: this test checks nothing", n, len(closed))
	}
	CloseIdleConnections()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection is still open after CloseIdleConnections")
	}
}

// connKey keys the server-side connection in a request's context.
type connKey struct{}
