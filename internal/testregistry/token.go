package testregistry

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenServer issues Docker-style Bearer tokens (https://distribution.github.io/distribution/spec/auth/token/)
// signed with a key whose certificate is the registry's rootcertbundle. The JWT header names
// the key by its JWK thumbprint ("kid"), which the registry's token controller trusts.
type tokenServer struct {
	realm, service, issuer string
	certPEM                []byte
	key                    *ecdsa.PrivateKey
	kid                    string
	users                  map[string]string
	expiresIn              time.Duration
	omitExpiresIn          bool
	grant                  func(user, repository string, actions []string) []string

	mu            sync.Mutex
	refreshTokens map[string]string // refresh token -> user
}

func newTokenServer(opts Options, realm, host string) (*tokenServer, error) {
	key, cert, certPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ts := &tokenServer{
		realm: realm, service: host, issuer: "imgcopy-testregistry-token-issuer",
		certPEM: certPEM, key: key, kid: token.GetJWKThumbprint(cert.PublicKey),
		users: opts.BasicAuth, expiresIn: opts.TokenExpiresIn, omitExpiresIn: opts.OmitExpiresIn,
		grant:         opts.Grant,
		refreshTokens: map[string]string{},
	}
	if ts.expiresIn == 0 {
		ts.expiresIn = 300 * time.Second
	}
	for tok, user := range opts.IdentityTokens {
		ts.refreshTokens[tok] = user
	}
	return ts, nil
}

type tokenResponse struct {
	Token        string `json:"token,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	ExpiresIn    int    `json:"expires_in,omitempty"`
	IssuedAt     string `json:"issued_at,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		user      string
		ok        bool
		scopes    []string
		service   string
		wantFresh bool
	)
	switch r.Method {
	case http.MethodGet:
		user, ok = ts.basicUser(r)
		q := r.URL.Query()
		scopes, service = q["scope"], q.Get("service")
		wantFresh = q.Get("offline_token") == "true"
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		user, ok = ts.formUser(r)
		scopes, service = r.PostForm["scope"], r.PostForm.Get("service")
		wantFresh = r.PostForm.Get("access_type") == "offline" || r.PostForm.Get("grant_type") == "password"
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !ok || service != ts.service {
		w.Header().Set("WWW-Authenticate", `Basic realm="testregistry-token"`)
		http.Error(w, `{"details":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	ts.issue(w, r.Method, user, scopes, wantFresh)
}

// basicUser checks the (optional) Basic credentials of a GET token request.
func (ts *tokenServer) basicUser(r *http.Request) (string, bool) {
	u, p, has := r.BasicAuth()
	if len(ts.users) == 0 {
		return u, true // no users configured: anyone gets a token
	}
	if !has {
		return "", false
	}
	want, known := ts.users[u]
	return u, known && want == p
}

// formUser checks an OAuth2 POST: grant_type=password or refresh_token.
func (ts *tokenServer) formUser(r *http.Request) (string, bool) {
	switch r.PostForm.Get("grant_type") {
	case "password":
		u, p := r.PostForm.Get("username"), r.PostForm.Get("password")
		want, known := ts.users[u]
		return u, known && want == p
	case "refresh_token":
		ts.mu.Lock()
		defer ts.mu.Unlock()
		u, known := ts.refreshTokens[r.PostForm.Get("refresh_token")]
		return u, known
	}
	return "", false
}

func (ts *tokenServer) issue(w http.ResponseWriter, method, user string, scopes []string, wantRefresh bool) {
	access := parseScopes(scopes)
	if ts.grant != nil {
		for _, a := range access {
			if a.Type == "repository" {
				a.Actions = ts.grant(user, a.Name, a.Actions)
			}
		}
	}
	raw, err := ts.sign(user, access)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp := tokenResponse{AccessToken: raw, IssuedAt: time.Now().UTC().Format(time.RFC3339)}
	if method == http.MethodGet {
		resp.Token = raw
	}
	if !ts.omitExpiresIn {
		resp.ExpiresIn = int(ts.expiresIn / time.Second)
	}
	if wantRefresh && user != "" {
		resp.RefreshToken = randomHex()
		ts.mu.Lock()
		ts.refreshTokens[resp.RefreshToken] = user
		ts.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (ts *tokenServer) sign(user string, access []*token.ResourceActions) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ts.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), ts.kid))
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims := token.ClaimSet{
		Issuer: ts.issuer, Subject: user, Audience: token.AudienceList{ts.service},
		Expiration: now.Add(ts.expiresIn).Unix(), NotBefore: now.Add(-time.Minute).Unix(), IssuedAt: now.Unix(),
		JWTID: randomHex(), Access: access,
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// parseScopes grants every requested scope "type:name:action,action" (names may contain ':'
// only for a registry port, which repository names never have).
func parseScopes(params []string) []*token.ResourceActions {
	var out []*token.ResourceActions
	for _, p := range params {
		for _, s := range strings.Fields(p) {
			first := strings.Index(s, ":")
			last := strings.LastIndex(s, ":")
			if first < 0 || last == first {
				continue
			}
			out = append(out, &token.ResourceActions{
				Type: s[:first], Name: s[first+1 : last], Actions: strings.Split(s[last+1:], ","),
			})
		}
	}
	return out
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
