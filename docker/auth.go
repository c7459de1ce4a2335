package docker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/credentials"
	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/redact"
	"github.com/imgcopy/imgcopy/types"
)

// defaultTokenLifetime applies when a token response has no expires_in (token spec: 60 s).
const defaultTokenLifetime = 60 * time.Second

// maxTokenLifetime bounds how long a token is kept, whatever its expires_in says.
const maxTokenLifetime = 24 * time.Hour

// oauthClientID identifies us in OAuth2 token requests.
const oauthClientID = "imgcopy"

// scope is one resource scope of a token request, e.g. repository:library/busybox:pull.
type scope struct {
	repo    string
	actions string // "pull", "pull,push", "*"
}

func (s scope) String() string { return "repository:" + s.repo + ":" + s.actions }

// scopeKey is the cache key of a set of scopes.
func scopeKey(scopes []scope) string {
	ss := make([]string, len(scopes))
	for i, s := range scopes {
		ss[i] = s.String()
	}
	sort.Strings(ss)
	return strings.Join(ss, " ")
}

type cachedToken struct {
	token   string
	expires time.Time
	shared  string // its key in the endpoint's tokenCache
}

// authenticator answers a registry's challenges. It is shared by all requests of one
// source or destination and safe for concurrent use.
type authenticator struct {
	sys      *types.SystemContext
	registry string // the registry as named in the reference, for credential lookup
	repo     string

	credsMu   sync.Mutex
	credsDone bool
	creds     types.DockerAuthConfig
	credsErr  error

	mu           sync.Mutex
	challenge    *challenge
	tokens       map[string]cachedToken // scopeKey -> token
	refused      map[string]error       // scopeKey -> the token server's refusal
	refreshToken string                 // registry-issued or identity token
	shared       *tokenCache            // the endpoint's, shared with the other clients; nil: none
}

func newAuthenticator(sys *types.SystemContext, registry, repo string) *authenticator {
	return &authenticator{sys: sys, registry: registry, repo: repo, tokens: map[string]cachedToken{}, refused: map[string]error{}}
}

// credentials looks the credentials up once (concurrent callers wait for that lookup); a lookup
// that ctx ended is not kept, so that another request may still make it.
func (a *authenticator) credentials(ctx context.Context) (types.DockerAuthConfig, error) {
	a.credsMu.Lock()
	defer a.credsMu.Unlock()
	if a.credsDone {
		return a.creds, a.credsErr
	}
	creds, err := credentials.Lookup(ctx, a.sys, a.registry, a.repo)
	if err != nil {
		err = errors.Wrapf(err, "looking up credentials for %s", a.registry)
		if ctx.Err() != nil {
			return types.DockerAuthConfig{}, err
		}
	}
	a.creds, a.credsErr, a.credsDone = creds, err, true
	return creds, err
}

// hasCredentials reports whether requests go out with credentials (looked up, or a registry
// token given) rather than anonymously.
func (a *authenticator) hasCredentials() bool {
	if a.sys != nil && a.sys.DockerBearerRegistryToken != "" {
		return true
	}
	a.credsMu.Lock()
	defer a.credsMu.Unlock()
	c := a.creds
	return a.credsDone && (c.Username != "" || c.Password != "" || c.IdentityToken != "")
}

// setChallenges records the challenge of a 401 response. It returns false when there is
// nothing we can answer or the answer would not change (so retrying is pointless).
//
// The Bearer token resp's request carried is dropped from the cache (refused, or expired
// early), unless another request already replaced it: requests that were in flight with the
// same token get a 401 each, and each may retry with the token the first one fetched.
func (a *authenticator) setChallenges(resp *http.Response, scopes []scope) bool {
	c, ok := pickChallenge(parseAuthHeader(resp.Header.Values("WWW-Authenticate")))
	if !ok {
		return false
	}
	if a.sys != nil && a.sys.DockerBearerRegistryToken != "" {
		return false // the token we were given is the only answer we have
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	renewed := false
	if a.challenge != nil && a.challenge.Scheme == "bearer" {
		key := scopeKey(scopes)
		cached, ok := a.tokens[key]
		sent := sentBearer(resp)
		switch {
		case ok && (sent == "" || sent == cached.token):
			delete(a.tokens, key) // fetch a new one
			a.shared.drop(cached.shared, cached.token)
			renewed = true
		case sent != "" && (!ok || sent != cached.token):
			renewed = true // already dropped or replaced by a concurrent request
		}
	}
	changed := a.challenge == nil || a.challenge.Scheme != c.Scheme || a.challenge.Params["realm"] != c.Params["realm"]
	a.challenge = &c
	logrus.WithFields(logrus.Fields{"registry": a.registry, "scheme": c.Scheme}).Debug("registry asks for authentication")
	return changed || renewed
}

// sentBearer returns the Bearer token the request of resp carried, or "".
func sentBearer(resp *http.Response) string {
	if resp.Request == nil {
		return ""
	}
	scheme, tok, ok := strings.Cut(resp.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return tok
}

// header returns the Authorization header value for a request needing scopes, or "".
func (a *authenticator) header(ctx context.Context, c *client, scopes []scope) (string, error) {
	if a.sys != nil && a.sys.DockerBearerRegistryToken != "" {
		return "Bearer " + a.sys.DockerBearerRegistryToken, nil
	}
	a.mu.Lock()
	ch := a.challenge
	a.mu.Unlock()
	if ch == nil {
		return "", nil
	}
	creds, err := a.credentials(ctx)
	if err != nil {
		return "", err
	}
	switch ch.Scheme {
	case "basic":
		if creds.Username == "" && creds.Password == "" {
			return "", nil
		}
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(creds.Username, creds.Password)
		return req.Header.Get("Authorization"), nil
	case "bearer":
		tok, err := a.bearerToken(ctx, c, *ch, creds, scopes)
		if err != nil {
			return "", err
		}
		return "Bearer " + tok, nil
	}
	return "", nil
}

// bearerToken returns a cached token for scopes or fetches one. Fetches are serialized so
// that concurrent blob uploads share one token request.
func (a *authenticator) bearerToken(ctx context.Context, c *client, ch challenge, creds types.DockerAuthConfig, scopes []scope) (string, error) {
	key := scopeKey(scopes)
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tokens[key]; ok && time.Now().Before(t.expires) {
		return t.token, nil
	}
	if err := a.refused[key]; err != nil {
		return "", err
	}
	shared := sharedTokenKey(ch, creds, key)
	defer a.shared.lock(shared)()
	if t, ok := a.shared.get(shared); ok {
		a.tokens[key] = t
		return t.token, nil
	}
	if err := a.shared.refusal(shared); err != nil {
		a.refused[key] = err
		return "", err
	}
	refresh := a.refreshToken
	if refresh == "" {
		refresh = creds.IdentityToken
	}
	tr, err := fetchToken(ctx, c, ch, creds, refresh, scopes)
	if err != nil {
		if errors.Is(err, types.ErrUnauthorized) || errors.Is(err, types.ErrDenied) {
			// The token server refused these credentials: a final answer for the requests
			// waiting for the same token (the blobs of an image are checked side by side).
			a.refused[key] = err
			a.shared.refuse(shared, err)
		}
		return "", err
	}
	if tr.RefreshToken != "" {
		a.refreshToken = tr.RefreshToken
	}
	lifetime := defaultTokenLifetime
	if tr.ExpiresIn > 0 {
		// Capped when read: a larger expires_in would overflow the duration into the past,
		// and the token would be fetched again for every request.
		lifetime = time.Duration(tr.ExpiresIn) * time.Second
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	// Expire a little early so that a token is not refused on arrival.
	t := cachedToken{token: tok, expires: time.Now().Add(lifetime * 9 / 10), shared: shared}
	a.tokens[key] = t
	a.shared.put(shared, t)
	return tok, nil
}

type tokenResponse struct {
	Token        string          `json:"token"`
	AccessToken  string          `json:"access_token"`
	ExpiresIn    lifetimeSeconds `json:"expires_in"`
	RefreshToken string          `json:"refresh_token"`
}

// lifetimeSeconds is a token response's expires_in: a JSON number, or a string holding one
// (some token servers send "300"; distribution issue 1746), capped at maxTokenLifetime.
// Anything else is 0, "not given": the token itself is still good, so an odd expires_in must
// not fail the login.
type lifetimeSeconds int

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (l *lifetimeSeconds) UnmarshalJSON(b []byte) error {
	var v any
	_ = json.Unmarshal(b, &v)
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case string:
		f, _ = strconv.ParseFloat(strings.TrimSpace(x), 64)
	}
	*l = 0
	if f >= 1 { // NaN, negatives and fractions of a second are not a lifetime
		*l = lifetimeSeconds(min(f, maxTokenLifetime.Seconds()))
	}
	return nil
}

// fetchToken asks the challenge's realm for a token: an OAuth2 POST when we hold a refresh
// token, else a GET with optional Basic credentials (https://distribution.github.io/distribution/spec/auth/token/).
func fetchToken(ctx context.Context, c *client, ch challenge, creds types.DockerAuthConfig, refresh string, scopes []scope) (*tokenResponse, error) {
	req, err := tokenRequest(ctx, c, ch, creds, refresh, scopes)
	if err != nil {
		return nil, err
	}
	resp, err := c.sendRetrying(ctx, req)
	if err != nil {
		return nil, errors.Wrapf(err, "requesting a token for %s", c.name())
	}
	if resp.StatusCode != http.StatusOK {
		err := c.statusError(resp, kindOther)
		if re, ok := asRegistryError(err); ok {
			re.tokenRefusal()
		}
		if errors.Is(err, types.ErrUnauthorized) {
			return nil, err // "authentication required for HOST/REPO"
		}
		return nil, errors.Wrapf(err, "requesting a token for %s", c.name())
	}
	defer resp.Body.Close()
	body, err := readMetadata(resp, iolimits.MaxAuthTokenBodySize)
	if err != nil {
		return nil, errors.Wrapf(err, "reading token response for %s", c.name())
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, errors.Wrapf(err, "decoding token response for %s", c.name())
	}
	if tr.Token == "" && tr.AccessToken == "" {
		return nil, errors.Errorf("token response for %s has no token", c.name())
	}
	return &tr, nil
}

func tokenRequest(ctx context.Context, c *client, ch challenge, creds types.DockerAuthConfig, refresh string, scopes []scope) (*http.Request, error) {
	realm, err := url.Parse(ch.Params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return nil, errors.Errorf("registry %s asks for a token from an invalid realm %q (its WWW-Authenticate header is malformed)", c.registry, truncate(ch.Params["realm"]))
	}
	hasCreds := refresh != "" || creds.Username != "" || creds.Password != ""
	if hasCreds && realm.Scheme == "http" && c.base != nil && c.base.Scheme == "https" {
		return nil, errors.Errorf("registry %s, reached over HTTPS, asks for credentials to be sent to a plain-HTTP token realm %s: refusing to send them in clear (the registry's auth configuration names the wrong scheme)", c.registry, redact.URL(realm))
	}
	ss := make([]string, len(scopes))
	for i, s := range scopes {
		ss[i] = s.String()
	}
	if refresh != "" {
		form := url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "service": {ch.Params["service"]},
			"client_id": {oauthClientID}, "scope": {strings.Join(ss, " ")},
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	q := realm.Query()
	if svc := ch.Params["service"]; svc != "" {
		q.Set("service", svc)
	}
	for _, s := range ss {
		q.Add("scope", s)
	}
	if creds.Username != "" {
		q.Set("account", creds.Username)
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return nil, err
	}
	if creds.Username != "" || creds.Password != "" {
		req.SetBasicAuth(creds.Username, creds.Password)
	}
	return req, nil
}
