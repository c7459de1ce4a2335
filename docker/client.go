package docker

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/proxyerr"
	"github.com/imgcopy/imgcopy/internal/redact"
	"github.com/imgcopy/imgcopy/types"
)

const defaultUserAgent = "imgcopy"

// maxRedirects bounds redirect chains (blob downloads redirect to storage once).
const maxRedirects = 10

// errTooManyRedirects ends a longer chain: the registry's redirects loop. That is not a network
// failure (exit code 7), so the request is not retried either.
var errTooManyRedirects = errors.Errorf("stopped after %d redirects: the registry's redirects loop", maxRedirects)

// client talks to one repository of one registry. It is safe for concurrent use.
type client struct {
	sys      *types.SystemContext
	registry string // as in the reference ("docker.io", "127.0.0.1:5000"): credentials, cache scope
	host     string // the API host actually contacted ("registry-1.docker.io")
	repo     string
	http     *http.Client
	auth     *authenticator
	retry    retryPolicy
	// insecureOK allows falling back to plain HTTP (--tls-verify=false, or a loopback host).
	insecureOK bool
	// pullOnly is set on clients that only read the repository (sources, tag listing): a 401
	// or 403 may then mean that the repository does not exist (see ambiguousDenial).
	pullOnly    bool
	userAgent   string
	readTimeout time.Duration // a stalled exchange is cancelled after this long (stall.go); 0: never

	endpoint *endpoint // shared with the other clients of this host (see endpoint.go)
	pingMu   sync.Mutex
	base     *url.URL // scheme://host once pinged

	noReferrersAPI atomic.Bool // the registry answered the referrers API with "unsupported"
	notIndexTags   sync.Map    // tag-schema tags found holding no referrers index (warned once)
}

func newClient(sys *types.SystemContext, registry, host, repo string) (*client, error) {
	ep, err := sharedEndpoint(sys, host)
	if err != nil {
		return nil, err
	}
	c := &client{
		sys: sys, registry: registry, host: host, repo: repo, endpoint: ep,
		auth:        newAuthenticator(sys, registry, repo),
		retry:       newRetryPolicy(sys),
		insecureOK:  insecureOK(sys, host),
		userAgent:   defaultUserAgent,
		readTimeout: readTimeout(sys),
	}
	c.auth.shared = &ep.tokens
	if sys != nil && sys.UserAgent != "" {
		c.userAgent = sys.UserAgent
	}
	c.http = &http.Client{Transport: ep.transport, CheckRedirect: checkRedirect}
	return c, nil
}

// checkRedirect follows redirects (blob storage backends) but never sends the registry's
// Authorization header to another host or over a downgraded scheme: Go's client keeps it
// for the same host name on another port.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errTooManyRedirects
	}
	first := via[0].URL
	if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		req.Header.Del("Authorization")
	}
	logrus.WithFields(logrus.Fields{"url": redact.URL(req.URL)}).Debug("following registry redirect")
	return nil
}

// insecureOK reports whether host may be reached over plain HTTP: with --tls-verify=false,
// or on a loopback host unless --tls-verify=true was given explicitly (which requires HTTPS
// there too, as skopeo's flag does).
func insecureOK(sys *types.SystemContext, host string) bool {
	verify := types.OptionalBoolUndefined
	if sys != nil {
		verify = sys.InsecureSkipTLSVerify
	}
	return verify == types.OptionalBoolTrue || (verify == types.OptionalBoolUndefined && isLoopback(host))
}

// isLoopback reports whether host (host[:port]) is localhost or in 127.0.0.0/8 or ::1,
// where plain HTTP is allowed without --tls-verify=false, as other tools do.
func isLoopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // "[::1]": IPv6 without a port
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// statusError turns an unexpected response into a registryError (closing its body).
func (c *client) statusError(resp *http.Response, kind objectKind) error {
	if resp.StatusCode == http.StatusProxyAuthRequired {
		// Only a proxy answers 407: here one that HTTP_PROXY names for plain HTTP.
		drain(resp)
		return &proxyerr.Refused{Proxy: c.proxyOf(resp.Request), Target: c.host, Status: resp.Status, Code: resp.StatusCode}
	}
	err := newRegistryError(resp, c.name(), kind, c.pullOnly)
	if re, ok := err.(*registryError); ok && writeScopeRefused(resp) && c.auth.hasCredentials() {
		re.denyWrite()
	}
	return err
}

// viaProxy adds to err, a request that got no answer, the proxy it went through: a proxy that
// hangs up on a CONNECT request gave only "unexpected EOF". A refusal names it already.
func (c *client) viaProxy(err error, req *http.Request) error {
	var te *transportError
	if !errors.As(err, &te) || errors.Is(err, types.ErrProxyRefused) {
		return err
	}
	if p := c.proxyOf(req); p != "" {
		te.msg += " (through proxy " + p + ")"
	}
	return err
}

// proxyOf names (without credentials) the proxy req went through, "" when unknown.
func (c *client) proxyOf(req *http.Request) string {
	if tr := c.endpoint.transport; req != nil && tr.Proxy != nil {
		if u, err := tr.Proxy(req); err == nil && u != nil {
			return redact.URL(u)
		}
	}
	return ""
}

// name renders HOST/REPO (HOST without a repository) for messages.
func (c *client) name() string {
	if c.repo == "" {
		return c.registry
	}
	return c.registry + "/" + c.repo
}

// request describes one registry request.
type request struct {
	method string
	path   string   // "/v2/..." relative to the registry, or
	url    *url.URL // an absolute URL (e.g. an upload Location)
	query  url.Values
	header http.Header
	body   []byte    // a replayable body, or
	stream io.Reader // a streamed body, sent once: requests with one are never retried
	size   int64     // size of stream, -1 if unknown
	scopes []scope
}

// do sends r, answering auth challenges and retrying transient failures (network errors,
// 408, 429, 5xx) with back-off. It returns the response whatever its status; the caller
// closes its body.
func (c *client) do(ctx context.Context, r request) (*http.Response, error) {
	if err := c.ping(ctx); err != nil {
		return nil, err
	}
	replayable := r.stream == nil // a streamed body is sent once: never retried
	resp, err := c.withRetries(ctx, replayable,
		func(int) (*http.Response, error) { return c.send(ctx, r) },
		func(resp *http.Response) bool { return c.auth.setChallenges(resp, r.scopes) })
	if err == nil && !replayable && resp.StatusCode == http.StatusUnauthorized && c.auth.setChallenges(resp, r.scopes) {
		return nil, &authRenewError{err: c.statusError(resp, kindOther)}
	}
	return resp, err
}

// authRenewError is a 401 to a request whose streamed body cannot be sent again, from a
// registry whose challenge we can answer anew (its token expired, or was refused before we
// thought it would expire): the caller may start the operation over, and its next request
// gets a new token. It matches the registry's error (types.ErrUnauthorized).
type authRenewError struct{ err error }

func (e *authRenewError) Error() string { return e.err.Error() }

// Unwrap returns the registry's error.
func (e *authRenewError) Unwrap() error { return e.err }

// authRenewable reports whether err is an authRenewError.
func authRenewable(err error) bool {
	var re *authRenewError
	return errors.As(err, &re)
}

// sendRetrying sends a prepared request (ping, token requests) with
// retries of transient failures; a body is resent only when req.GetBody can replay it. It
// does not answer auth challenges.
func (c *client) sendRetrying(ctx context.Context, req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.GetBody != nil
	return c.withRetries(ctx, replayable, func(attempt int) (*http.Response, error) {
		if attempt > 0 && req.GetBody != nil {
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = b
		}
		return c.sendLogged(req)
	}, nil)
}

// withRetries is the one retry loop of the client. It calls send (attempt counts from 0) and
// retries, after a back-off, network errors and retryable statuses, at most c.retry.times
// times and only when the request is replayable. When challenge is set, a 401 of a
// replayable request is retried once, without counting as a retry, if challenge says the new
// challenge can be answered (a new token, other credentials). The last response is returned
// whatever its status; once the retries are used up the caller turns it into an error.
func (c *client) withRetries(ctx context.Context, replayable bool, send func(attempt int) (*http.Response, error), challenge func(*http.Response) bool) (*http.Response, error) {
	authRetried := false
	for attempt, sent := 0, 0; ; attempt, sent = attempt+1, sent+1 {
		resp, err := send(sent)
		canRetry := replayable && attempt < c.retry.times
		switch {
		case err != nil:
			if !canRetry || !retryableError(ctx, err) {
				return nil, err
			}
		case resp.StatusCode == http.StatusUnauthorized && challenge != nil && replayable && !authRetried && challenge(resp):
			drain(resp)
			authRetried = true
			attempt-- // answering a challenge is not a retry
			continue
		case canRetry && (retryableStatus(resp.StatusCode) || expiredRedirect(resp)):
			drain(resp)
		default:
			return resp, nil
		}
		if err := c.backoff(ctx, attempt, resp, err); err != nil {
			return nil, err
		}
	}
}

// expiredRedirect reports whether resp is the refusal of a GET by storage the registry
// redirected to: its signed URL expired before use (a slow start, clock skew, a CDN that
// cached the redirect). Asking the registry again gets a new URL. A HEAD is not asked again:
// its caller copes with the refusal (blobExists).
func expiredRedirect(resp *http.Response) bool {
	_, away := redirectedAway(resp)
	return away && resp.Request.Method == http.MethodGet && storageRefusal(resp.StatusCode)
}

// backoff waits before retry number attempt (0-based): the Retry-After of resp, or of the
// registry's answer in cause when resp is gone, else the back-off of the retry policy.
func (c *client) backoff(ctx context.Context, attempt int, resp *http.Response, cause error) error {
	d := c.retry.delayFor(attempt, resp)
	if re, ok := asRegistryError(cause); ok && resp == nil && re.hasRetryAfter {
		d = re.retryAfter
	}
	f := logrus.Fields{"registry": c.host, "attempt": attempt + 1, "delay": d}
	if resp != nil {
		f["status"] = resp.StatusCode
		f["url"] = redact.URL(resp.Request.URL)
	} else {
		f["error"] = cause
	}
	logrus.WithFields(f).Debug("retrying registry request")
	return sleep(ctx, d)
}

// send makes one attempt.
func (c *client) send(ctx context.Context, r request) (*http.Response, error) {
	u := r.url
	if u == nil {
		u = c.base.ResolveReference(&url.URL{Path: r.path})
	}
	if r.query != nil {
		u = cloneURL(u)
		q := u.Query()
		for k, vs := range r.query {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	size := int64(0)
	switch {
	case r.body != nil:
		body, size = bytes.NewReader(r.body), int64(len(r.body))
	case r.stream != nil:
		body, size = r.stream, r.size
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, errors.Wrapf(err, "building request for %s", redact.URL(u))
	}
	if r.stream != nil {
		req.ContentLength = size // -1: chunked
		req.GetBody = nil
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if c.mayCarryCredentials(u) {
		auth, err := c.auth.header(ctx, c, r.scopes)
		if err != nil {
			return nil, err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
	}
	return c.sendLogged(req)
}

// mayCarryCredentials reports whether a request to u (a Location the registry sent) may carry
// the registry's Authorization header: only on the registry's own host, and never over plain
// HTTP when the registry is reached over HTTPS (a Location "http://HOST/..." would otherwise
// send it in clear on the network).
func (c *client) mayCarryCredentials(u *url.URL) bool {
	return u.Host == c.base.Host && (u.Scheme == c.base.Scheme || u.Scheme == "https")
}

func (c *client) sendLogged(req *http.Request) (*http.Response, error) {
	done, err := c.startRequest(req)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.userAgent)
	req, wd := watch(req, c.readTimeout)
	resp, err := c.http.Do(req)
	done(resp)
	if wd != nil {
		if err != nil {
			wd.stop()
			err = wd.check(err)
		} else {
			wd.pause()
			resp.Body = &watchedBody{ReadCloser: resp.Body, w: wd}
		}
	}
	f := logrus.Fields{"method": req.Method, "url": redact.URL(req.URL)}
	if err != nil {
		err = c.viaProxy(sanitizeError(err), req)
		f["error"] = err
		logrus.WithFields(f).Debug("registry request failed")
		return nil, err
	}
	f["status"] = resp.StatusCode
	logrus.WithFields(f).Debug("registry request")
	for _, w := range resp.Header.Values("Warning") {
		logrus.WithField("registry", req.URL.Host).Warnf("registry warning: %s", truncate(w))
	}
	return resp, nil
}

// sanitizeError returns err without the query string *url.Error includes in its message;
// errors.Is/As still reach the cause.
func sanitizeError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	msg := ue.Op + ": " + ue.Err.Error()
	if u, perr := url.Parse(ue.URL); perr == nil {
		msg = ue.Op + " " + redact.URL(u) + ": " + ue.Err.Error()
	}
	if errors.Is(ue.Err, errTooManyRedirects) {
		return errors.Wrap(errTooManyRedirects, strings.TrimSuffix(msg, ": "+ue.Err.Error()))
	}
	return &transportError{msg: msg, err: ue.Err, certRefused: clientCertRefused(ue.Err)}
}

// clientCertAlerts are the TLS alerts a server sends when it refuses the client certificate,
// or its absence: bad_certificate, unsupported_certificate, certificate_revoked,
// certificate_expired, certificate_unknown, unknown_ca, certificate_required (RFC 8446 §6.2).
var clientCertAlerts = []tls.AlertError{42, 43, 44, 45, 46, 48, 116}

// clientCertRefused reports whether err is a TLS alert of clientCertAlerts from the server.
// crypto/tls reports a received alert as a *net.OpError "remote error" around an unexported
// type whose text is that of the tls.AlertError of the same code.
func clientCertRefused(err error) bool {
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "remote error" || opErr.Err == nil {
		return false
	}
	for _, a := range clientCertAlerts {
		if opErr.Err.Error() == a.Error() {
			return true
		}
	}
	return false
}

// transportError is a request that got no response, or a body that broke off (connection,
// TLS or protocol failure, e.g. "server gave HTTP response to HTTPS client"), its message
// sanitized. It matches types.ErrNetwork whatever its cause, and its cause stays reachable
// with errors.Is/As.
type transportError struct {
	msg string
	err error
	// certRefused is set when the registry ended the TLS handshake refusing the client
	// certificate (or its absence): asking again cannot help.
	certRefused bool
}

func (e *transportError) Error() string { return e.msg }

// Unwrap returns the cause.
func (e *transportError) Unwrap() error { return e.err }

// Is makes errors.Is(err, types.ErrNetwork) true, and errors.Is(err,
// types.ErrClientCertRefused) for a refused client certificate.
func (e *transportError) Is(target error) bool {
	return target == types.ErrNetwork || (e.certRefused && target == types.ErrClientCertRefused)
}

func cloneURL(u *url.URL) *url.URL {
	c := *u
	if u.User != nil {
		uc := *u.User
		c.User = &uc
	}
	return &c
}

// drain discards a little of an unwanted response so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// ping finds the scheme the registry speaks (HTTPS, else plain HTTP when allowed) and its
// authentication challenge, once per client.
func (c *client) ping(ctx context.Context) error {
	return c.pingAs(ctx, nil)
}

// pingAs is ping. With warm set it is the warm-up ping of reference.Warm: a failure is
// recorded in warm and left on the endpoint, for the next client that pings to report
// instead of pinging again. Without, a failure answers the clients that ping within
// pingFailureReuse after it.
func (c *client) pingAs(ctx context.Context, warm *pingFailure) error {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.base != nil {
		return nil
	}
	c.endpoint.pingMu.Lock()
	defer c.endpoint.pingMu.Unlock()
	if base, ch := c.endpoint.pinged(); base != nil {
		c.base = base
		if ch != nil {
			c.auth.setChallenge(*ch)
		}
		return nil
	}
	if f := c.endpoint.warmFailure; f != nil {
		c.endpoint.warmFailure = nil // reported once; a later client tries again
		if warm == nil {
			return f.err
		}
	}
	if ep := c.endpoint; warm == nil && ep.failure != nil && time.Since(ep.failedAt) < pingFailureReuse {
		logrus.WithFields(logrus.Fields{"registry": c.host}).Debug("registry failed to answer a ping moments ago: not pinging again")
		return ep.failure
	}
	err := c.pingRegistry(ctx)
	switch {
	case err == nil || ctx.Err() != nil:
	case warm != nil:
		warm.err = err
		c.endpoint.warmFailure = warm
	default:
		c.endpoint.failure, c.endpoint.failedAt = err, time.Now()
	}
	return err
}

// pingRegistry sends the ping; the caller holds the endpoint's pingMu.
func (c *client) pingRegistry(ctx context.Context) error {
	httpsBase := &url.URL{Scheme: "https", Host: c.host}
	base, ch, err := httpsBase, (*challenge)(nil), error(nil)
	if !c.insecureOK {
		ch, err = c.pingOnce(ctx, httpsBase, false)
	} else {
		base, ch, err = c.pingEither(ctx, httpsBase)
	}
	if err != nil {
		return errors.Wrapf(err, "pinging registry %s", c.host)
	}
	if ch != nil {
		c.auth.setChallenge(*ch)
		logrus.WithFields(logrus.Fields{"registry": c.host, "scheme": ch.Scheme}).Debug("registry asks for authentication")
	}
	c.base = base
	c.endpoint.remember(base, ch)
	return nil
}

// pingEither pings over HTTPS and plain HTTP at once (--tls-verify=false, or a loopback host)
// and takes HTTPS when it answers, else HTTP: a plain-HTTP registry no longer waits for the
// HTTPS attempt to fail first (a connection and a refused TLS handshake, per registry and
// process). The ping sends no credentials, so the plain one gives nothing away.
func (c *client) pingEither(ctx context.Context, httpsBase *url.URL) (*url.URL, *challenge, error) {
	type result struct {
		ch  *challenge
		err error
	}
	plainCtx, cancel := context.WithCancel(ctx)
	defer cancel() // the plain ping is not needed once HTTPS answered
	plainBase := &url.URL{Scheme: "http", Host: c.host}
	plain := make(chan result, 1)
	go func() {
		ch, err := c.pingOnce(plainCtx, plainBase, false)
		plain <- result{ch, err}
	}()
	ch, err := c.pingOnce(ctx, httpsBase, true)
	if err == nil {
		return httpsBase, ch, nil
	}
	p := <-plain
	switch {
	case p.err == nil:
		return plainBase, p.ch, nil
	case speaksPlainHTTP(err):
		return nil, nil, p.err // the server answered in plain HTTP: what went wrong there matters
	}
	return nil, nil, err // the HTTPS error: the one a registry that should speak HTTPS gave
}

// speaksPlainHTTP reports whether err, the failure of an HTTPS request, shows that the server
// answered in plain HTTP.
func speaksPlainHTTP(err error) bool {
	var recordHeader tls.RecordHeaderError
	return errors.As(err, &recordHeader) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// pingOnce sends GET /v2/ and returns the authentication challenge of a 401 (nil for a 200);
// with fallback set, network errors are not retried because another scheme will be used.
func (c *client) pingOnce(ctx context.Context, base *url.URL, fallback bool) (*challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+"/v2/", nil)
	if err != nil {
		return nil, err
	}
	var resp *http.Response
	if fallback {
		resp, err = c.sendLogged(req)
	} else {
		resp, err = c.sendRetrying(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		drain(resp)
		return nil, nil
	case http.StatusUnauthorized:
		ch, ok := pickChallenge(parseAuthHeader(resp.Header.Values("WWW-Authenticate")))
		drain(resp)
		if !ok {
			return nil, nil
		}
		return &ch, nil
	}
	return nil, c.statusError(resp, kindOther)
}
