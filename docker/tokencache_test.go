package docker

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// TestTokensSharedAcrossClients: the clients of one registry share the tokens they fetch (a
// sync opens a source per image of the same repository): one token request per scope and
// credentials, however many sources read the repository one after the other. Other
// credentials (or none) get a token of their own, never another user's.
func TestTokensSharedAcrossClients(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": "s3cret", "bob": "hunter2"}
	reg := testregistry.Start(t, testregistry.Options{BearerToken: true, BasicAuth: users})
	ctx := testContext(t)
	creds := func(user string) *types.SystemContext {
		return &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: user, Password: users[user]}}
	}
	img := newTestImage(t, 37, "amd64")
	ref := mustParse(t, "//"+reg.Host+"/shared/tokens:v1")
	pushImage(t, ctx, ref, creds("alice"), nil, nil, []testImage{img}, nil)
	reg.ResetRequests()

	for _, user := range []string{"alice", "alice", "alice", "bob", "bob"} {
		pullImage(t, ctx, ref, creds(user), []testImage{img}, nil)
	}
	perAccount := map[string]int{}
	for _, r := range reg.Requests() {
		if r.Path != "/auth/token" {
			continue
		}
		q, _ := url.ParseQuery(r.RawQuery)
		if q.Get("scope") != "repository:shared/tokens:pull" {
			t.Errorf("token request for scope %q", q.Get("scope"))
		}
		perAccount[q.Get("account")]++
	}
	if perAccount["alice"] != 1 || perAccount["bob"] != 1 || len(perAccount) != 2 {
		t.Errorf("token requests per account %v, want one for alice and one for bob", perAccount)
	}
	if n := countRequests(reg.Requests(), http.MethodGet, "/manifests/", ""); n != 5 {
		t.Errorf("%d manifest GETs, want 5", n)
	}
}

// TestSharedTokenDroppedWhenRefused: a token the registry refuses is dropped from the shared
// cache too, so that the next client fetches a new one rather than starting with the refused
// one; a token another client already fetched in its place stays.
func TestSharedTokenDroppedWhenRefused(t *testing.T) {
	t.Parallel()
	scopes := []scope{{repo: "a/b", actions: "pull"}}
	ch := challenge{Scheme: "bearer", Params: map[string]string{"realm": "http://registry.test/token"}}
	shared := &tokenCache{}
	skey := sharedTokenKey(ch, types.DockerAuthConfig{}, scopeKey(scopes))
	a := newAuthenticator(anonSys(), "registry.test", "a/b")
	a.shared = shared
	a.setChallenge(ch)
	tok := cachedToken{token: "T1", expires: farFuture, shared: skey}
	a.tokens[scopeKey(scopes)] = tok
	shared.put(skey, tok)

	req, _ := http.NewRequest(http.MethodGet, "http://registry.test/v2/a/b/blobs/x", nil)
	req.Header.Set("Authorization", "Bearer T1")
	h := http.Header{"Www-Authenticate": {`Bearer realm="http://registry.test/token"`}}
	if !a.setChallenges(&http.Response{StatusCode: http.StatusUnauthorized, Header: h, Request: req}, scopes) {
		t.Fatal("the refusal of T1 is not retried")
	}
	if _, ok := shared.get(skey); ok {
		t.Fatal("the refused token stays in the shared cache")
	}
	shared.put(skey, cachedToken{token: "T2", expires: farFuture, shared: skey})
	shared.drop(skey, "T1")
	if got, ok := shared.get(skey); !ok || got.token != "T2" {
		t.Errorf("a late drop of T1 removed its replacement: %+v %v", got, ok)
	}
}

// TestRefusedCredentialsAskedOnce: credentials the token server refuses are refused for the
// whole run: the next clients (a sync's next images) report the refusal without asking again.
// Before, each asked, a failed login per image, and directory servers lock an account after a
// few of those.
func TestRefusedCredentialsAskedOnce(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{BearerToken: true, BasicAuth: map[string]string{"alice": "s3cret"}})
	ctx := testContext(t)
	wrong := &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "wrong"}}
	for i := range 4 {
		_, err := mustParse(t, "//"+reg.Host+"/locked/out:v1").NewImageSource(ctx, wrong)
		if !errors.Is(err, types.ErrCredentialsRefused) {
			t.Fatalf("source %d with a wrong password: %v, want ErrCredentialsRefused", i, err)
		}
	}
	if n := countRequests(reg.Requests(), http.MethodGet, "/auth/token", ""); n != 1 {
		t.Errorf("the token server was asked %d times with the refused password, want 1", n)
	}
}

// TestRefusalExpires: a refusal of credentials is final for refusalTTL, then forgotten, so that
// a long-lived program asks again once the password may have been fixed.
func TestRefusalExpires(t *testing.T) {
	t.Parallel()
	var c tokenCache
	refused := errors.New("refused")
	c.refuse("k", refused)
	if err := c.refusal("k"); err != refused {
		t.Fatalf("refusal right after: %v, want it", err)
	}
	c.mu.Lock()
	r := c.refused["k"]
	r.at = r.at.Add(-refusalTTL - time.Second)
	c.refused["k"] = r
	c.mu.Unlock()
	if err := c.refusal("k"); err != nil {
		t.Errorf("refusal after %v: %v, want none", refusalTTL, err)
	}
	if len(c.refused) != 0 {
		t.Errorf("%d refusals kept after they expired", len(c.refused))
	}
}
