package docker

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeServer is an httptest server whose handler a test writes for the endpoint under test;
// it records every request (with its Authorization header, which only tests may look at).
type fakeServer struct {
	*httptest.Server
	host string

	mu   sync.Mutex
	reqs []fakeRequest
}

type fakeRequest struct {
	Method, Path, RawQuery, Auth string
	Header                       http.Header
	ContentLength                int64
	Body                         string
}

func newFakeServer(t *testing.T, h http.HandlerFunc) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Record first: a client may see the whole response before the handler returns.
		f.mu.Lock()
		f.reqs = append(f.reqs, fakeRequest{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Auth: r.Header.Get("Authorization"),
			Header: r.Header.Clone(), ContentLength: r.ContentLength,
		})
		f.mu.Unlock()
		h(w, r)
	}))
	f.host = strings.TrimPrefix(f.URL, "http://")
	t.Cleanup(func() {
		f.CloseClientConnections()
		f.Close()
	})
	return f
}

func (f *fakeServer) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.reqs...)
}

func (f *fakeServer) count(method, pathPart string) int {
	n := 0
	for _, r := range f.requests() {
		if r.Method == method && strings.Contains(r.Path, pathPart) {
			n++
		}
	}
	return n
}

// writeRegistryError writes a distribution-spec error body.
func writeRegistryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"` + message + `","detail":null}]}`))
}
