package testregistry

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func client(t *testing.T, r *Registry) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	if r.CACertPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(r.CACertPEM) {
			t.Fatal("bad CA PEM")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func do(t *testing.T, c *http.Client, method, u, auth string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func bearer(t *testing.T, c *http.Client, r *Registry, challenge, user, pass string) string {
	t.Helper()
	// Challenge: Bearer realm="...",service="...",scope="..."
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(challenge, "Bearer "), ",") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = strings.Trim(v, `"`)
	}
	if params["realm"] != r.URL+"/auth/token" {
		t.Fatalf("realm %q", params["realm"])
	}
	q := url.Values{"service": {params["service"]}, "scope": {"repository:foo/bar:pull,push"}}
	req, _ := http.NewRequest(http.MethodGet, params["realm"]+"?"+q.Encode(), nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token status %d", resp.StatusCode)
	}
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	return tr.Token
}

func TestStartVariants(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": "s3cret"}
	cases := []struct {
		name string
		opts Options
	}{
		{name: "plain", opts: Options{}},
		{name: "tls", opts: Options{TLS: true}},
		{name: "basic", opts: Options{TLS: true, BasicAuth: users}},
		{name: "bearer anonymous", opts: Options{BearerToken: true}},
		{name: "bearer with users", opts: Options{BearerToken: true, BasicAuth: users}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Start(t, tc.opts)
			if !strings.HasPrefix(r.Host, "127.0.0.1:") {
				t.Fatalf("host %q", r.Host)
			}
			c := client(t, r)
			tagsURL := r.URL + "/v2/foo/bar/tags/list"
			resp := do(t, c, http.MethodGet, tagsURL, "")
			auth := ""
			switch {
			case tc.opts.BearerToken:
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", resp.StatusCode)
				}
				auth = "Bearer " + bearer(t, c, r, resp.Header.Get("WWW-Authenticate"), "alice", "s3cret")
			case tc.opts.BasicAuth != nil:
				if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
					t.Fatalf("status %d, challenge %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
				req, _ := http.NewRequest(http.MethodGet, tagsURL, nil)
				req.SetBasicAuth("alice", "s3cret")
				auth = req.Header.Get("Authorization")
			}
			if auth != "" {
				resp = do(t, c, http.MethodGet, tagsURL, auth)
			}
			if resp.StatusCode != http.StatusNotFound { // authorized, repository unknown
				t.Fatalf("status %d, want 404", resp.StatusCode)
			}
			recs := r.Requests()
			last := recs[len(recs)-1]
			if last.Path != "/v2/foo/bar/tags/list" || last.Status != http.StatusNotFound || last.HasAuth != (auth != "") {
				t.Errorf("last record %+v", last)
			}
			if last.Header.Get("Authorization") != "" {
				t.Errorf("recorded headers keep Authorization")
			}
		})
	}
}

func TestBearerRejectsBadPassword(t *testing.T) {
	t.Parallel()
	r := Start(t, Options{BearerToken: true, BasicAuth: map[string]string{"alice": "s3cret"}})
	c := client(t, r)
	req, _ := http.NewRequest(http.MethodGet, r.URL+"/auth/token?service="+url.QueryEscape(r.Host), nil)
	req.SetBasicAuth("alice", "wrong")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
}
