package docker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestNoCredentialsOverPlainHTTP: a registry reached over HTTPS that names a plain-HTTP URL (an
// upload Location on its own host and port, or the token realm) does not get the credentials
// sent there in clear; a registry reached over plain HTTP still does.
func TestNoCredentialsOverPlainHTTP(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		scheme    string // the scheme the registry was reached over
		bearer    bool   // a Bearer challenge whose realm is on the plain-HTTP server; else Basic
		wantCreds bool
	}{
		{"Location over HTTP from an HTTPS registry", "https", false, false},
		{"token realm over HTTP from an HTTPS registry", "https", true, false},
		{"Location of a plain-HTTP registry", "http", false, true},
		{"token realm of a plain-HTTP registry", "http", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					_, _ = w.Write([]byte(`{"token":"tok"}`))
				}
			})
			sys := &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "secret"}}
			c, err := newClient(sys, srv.host, srv.host, "a/b")
			if err != nil {
				t.Fatal(err)
			}
			// As if the ping had found the registry on tc.scheme at the same host and port.
			c.base = &url.URL{Scheme: tc.scheme, Host: srv.host}
			ch := challenge{Scheme: "basic", Params: map[string]string{}}
			if tc.bearer {
				ch = challenge{Scheme: "bearer", Params: map[string]string{"realm": "http://" + srv.host + "/token"}}
			}
			c.auth.setChallenge(ch)
			scopes := []scope{{repo: "a/b", actions: "pull"}}
			if tc.bearer {
				_, err = c.auth.header(testContext(t), c, scopes)
			} else {
				loc := &url.URL{Scheme: "http", Host: srv.host, Path: "/v2/a/b/blobs/uploads/x"}
				var resp *http.Response
				if resp, err = c.do(testContext(t), request{method: http.MethodGet, url: loc, scopes: scopes}); err == nil {
					drain(resp)
				}
			}
			sent := false
			for _, r := range srv.requests() {
				sent = sent || strings.HasPrefix(r.Auth, "Basic ")
			}
			if sent != tc.wantCreds {
				t.Errorf("credentials sent over plain HTTP: %v, want %v (requests %+v)", sent, tc.wantCreds, srv.requests())
			}
			if tc.bearer && !tc.wantCreds && (err == nil || !strings.Contains(err.Error(), "plain-HTTP token realm")) {
				t.Errorf("got %v, want the refusal of the plain-HTTP realm", err)
			}
		})
	}
}

// TestRedirectLoop: a registry whose redirects loop fails once, after maxRedirects, with an
// error that is not a network failure (not exit code 7) and is not retried.
func TestRedirectLoop(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
		}
	})
	c, err := newClient(anonSys(), srv.host, srv.host, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.do(testContext(t), request{method: http.MethodGet, path: "/v2/a/b/tags/list"})
	if !errors.Is(err, errTooManyRedirects) || types.Classify(err) == types.ClassNetwork {
		t.Errorf("got %v (class %v), want errTooManyRedirects, not a network failure", err, types.Classify(err))
	}
	if n := srv.count(http.MethodGet, "/tags/list"); n != maxRedirects {
		t.Errorf("%d requests, want %d (one chain, not retried)", n, maxRedirects)
	}
}
