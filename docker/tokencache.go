package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/imgcopy/imgcopy/types"
)

// tokenCache holds the Bearer tokens of one registry endpoint for all its clients in the
// process. A sync opens a source and a destination client per image, and each asked the token
// server again for the token the previous image's client already held: a sync of 8 tags of one
// repository fetched 17 tokens for the same scope. Tokens are keyed by the realm and service
// that issue them, a digest of the credentials they were issued for, and their scopes, so a
// token only ever goes to a client that would have been given the same one.
//
// It also keeps the token server's refusals of credentials, for refusalTTL: a sync with a
// wrong password asked the token server once per image, each a failed login (directory
// servers lock accounts after a few), where once tells all there is to know; a program that
// lives on (a library user) asks again after a while, when the password may have been fixed.
type tokenCache struct {
	mu       sync.Mutex
	tokens   map[string]cachedToken
	refused  map[string]refusal
	fetching map[string]*sync.Mutex // per key: held while a client fetches that token
}

// refusalTTL is how long a refusal of credentials is taken as final.
const refusalTTL = 5 * time.Minute

// refusal is the token server's refusal of credentials, and when it came.
type refusal struct {
	err error
	at  time.Time
}

// lock serializes the fetches of the token under key across clients, so that clients starting
// together (the images of a sync) make one token request and share its answer; the caller
// calls the returned unlock.
func (c *tokenCache) lock(key string) (unlock func()) {
	if c == nil {
		return func() {}
	}
	c.mu.Lock()
	if c.fetching == nil {
		c.fetching = map[string]*sync.Mutex{}
	}
	m, ok := c.fetching[key]
	if !ok {
		m = &sync.Mutex{}
		c.fetching[key] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// refusal returns the refusal recorded under key, or nil.
func (c *tokenCache) refusal(key string) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.refused[key]
	if !ok || time.Since(r.at) > refusalTTL {
		delete(c.refused, key)
		return nil
	}
	return r.err
}

// refuse records the token server's refusal of the request for key.
func (c *tokenCache) refuse(key string, err error) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused == nil {
		c.refused = map[string]refusal{}
	}
	c.refused[key] = refusal{err: err, at: time.Now()}
}

// maxSharedTokens is the size above which a store first drops expired tokens.
const maxSharedTokens = 256

// get returns the unexpired token cached under key.
func (c *tokenCache) get(key string) (cachedToken, bool) {
	if c == nil {
		return cachedToken{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[key]
	if !ok || !time.Now().Before(t.expires) {
		return cachedToken{}, false
	}
	return t, true
}

// put caches t under key.
func (c *tokenCache) put(key string, t cachedToken) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		c.tokens = map[string]cachedToken{}
	}
	if len(c.tokens) >= maxSharedTokens {
		now := time.Now()
		for k, old := range c.tokens {
			if !now.Before(old.expires) {
				delete(c.tokens, k)
			}
		}
	}
	c.tokens[key] = t
}

// drop forgets the token cached under key if it is still token (the registry refused it);
// one that another client already fetched instead stays.
func (c *tokenCache) drop(key, token string) {
	if c == nil || key == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tokens[key]; ok && t.token == token {
		delete(c.tokens, key)
	}
}

// sharedTokenKey is the tokenCache key of the token for scopeKey from the realm of ch, asked
// with creds. The credentials enter only as a digest.
func sharedTokenKey(ch challenge, creds types.DockerAuthConfig, scopeKey string) string {
	h := sha256.New()
	for _, s := range []string{ch.Params["realm"], ch.Params["service"], creds.Username, creds.Password, creds.IdentityToken} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)) + " " + scopeKey
}
