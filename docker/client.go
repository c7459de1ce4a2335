package docker

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/tlsconfig"
	"github.com/imgcopy/imgcopy/types"
)

const defaultUserAgent = "imgcopy"

// maxRedirects bounds redirect chains (blob downloads redirect to storage once).
const maxRedirects = 10

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
	userAgent  string

	pingMu sync.Mutex
	base   *url.URL // scheme://host once pinged

	noReferrersAPI atomic.Bool // the registry answered the referrers API with "unsupported"
}

func newClient(sys *types.SystemContext, registry, host, repo string) (*client, error) {
	tlsCfg, err := tlsconfig.ForHost(sys, host)
	if err != nil {
		return nil, errors.Wrapf(err, "configuring TLS for %s", host)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	c := &client{
		sys: sys, registry: registry, host: host, repo: repo,
		auth:       newAuthenticator(sys, registry, repo),
		retry:      newRetryPolicy(sys),
		insecureOK: (sys != nil && sys.InsecureSkipTLSVerify == types.OptionalBoolTrue) || isLoopback(host),
		userAgent:  defaultUserAgent,
	}
	if sys != nil && sys.UserAgent != "" {
		c.userAgent = sys.UserAgent
	}
	c.http = &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	return c, nil
}

// checkRedirect follows redirects (blob storage backends) but never sends the registry's
// Authorization header to another host or over a downgraded scheme: Go's client keeps it
// for the same host name on another port.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errors.Errorf("stopped after %d redirects", maxRedirects)
	}
	first := via[0].URL
	if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		req.Header.Del("Authorization")
	}
	logrus.WithFields(logrus.Fields{"url": sanitizeURL(req.URL)}).Debug("following registry redirect")
	return nil
}

// isLoopback reports whether host (host[:port]) is localhost or in 127.0.0.0/8 or ::1,
// where plain HTTP is allowed without --tls-verify=false, as other tools do.
func isLoopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// name renders HOST/REPO (HOST without a repository) for messages.
func (c *client) name() string {
	if c.repo == "" {
		return c.registry
	}
	return c.registry + "/" + c.repo
}

// close releases idle connections.
func (c *client) close() {
	c.http.CloseIdleConnections()
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
	authRetried := false
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, r)
		canRetry := r.stream == nil && attempt < c.retry.times
		if err != nil {
			if !canRetry || !retryableError(ctx, err) {
				return nil, err
			}
			if err := c.backoff(ctx, attempt, nil, err); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode == http.StatusUnauthorized && !authRetried && r.stream == nil && c.auth.setChallenges(resp, r.scopes) {
			drain(resp)
			authRetried = true
			attempt--
			continue
		}
		if canRetry && retryableStatus(resp.StatusCode) {
			drain(resp)
			if err := c.backoff(ctx, attempt, resp, nil); err != nil {
				return nil, err
			}
			continue
		}
		return resp, nil
	}
}

func (c *client) backoff(ctx context.Context, attempt int, resp *http.Response, cause error) error {
	d := c.retry.delayFor(attempt, resp)
	f := logrus.Fields{"registry": c.host, "attempt": attempt + 1, "delay": d}
	if resp != nil {
		f["status"] = resp.StatusCode
		f["url"] = sanitizeURL(resp.Request.URL)
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
		return nil, errors.Wrapf(err, "building request for %s", sanitizeURL(u))
	}
	if r.stream != nil {
		req.ContentLength = size // -1: chunked
		req.GetBody = nil
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if u.Host == c.base.Host { // never send credentials to another host a Location names
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

// sendRetrying sends a prepared request (token requests) with retries of transient failures.
func (c *client) sendRetrying(ctx context.Context, req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 && req.GetBody != nil {
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = b
		}
		resp, err := c.sendLogged(req)
		canRetry := attempt < c.retry.times && (req.Body == nil || req.GetBody != nil)
		switch {
		case err != nil && canRetry && retryableError(ctx, err):
		case err == nil && canRetry && retryableStatus(resp.StatusCode):
			drain(resp)
		default:
			return resp, err
		}
		if err := c.backoff(ctx, attempt, resp, err); err != nil {
			return nil, err
		}
	}
}

func (c *client) sendLogged(req *http.Request) (*http.Response, error) {
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	f := logrus.Fields{"method": req.Method, "url": sanitizeURL(req.URL)}
	if err != nil {
		err = sanitizeError(err)
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
		msg = ue.Op + " " + sanitizeURL(u) + ": " + ue.Err.Error()
	}
	return &transportError{msg: msg, err: ue.Err}
}

// transportError is a sanitized network error.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }

// Unwrap returns the cause.
func (e *transportError) Unwrap() error { return e.err }

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
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.base != nil {
		return nil
	}
	schemes := []string{"https"}
	if c.insecureOK {
		schemes = append(schemes, "http")
	}
	var firstErr error
	for i, scheme := range schemes {
		base := &url.URL{Scheme: scheme, Host: c.host}
		err := c.pingOnce(ctx, base, i < len(schemes)-1)
		if err == nil {
			c.base = base
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Wrapf(firstErr, "pinging registry %s", c.host)
}

// pingOnce sends GET /v2/; with fallback set, network errors are not retried because
// another scheme will be tried.
func (c *client) pingOnce(ctx context.Context, base *url.URL, fallback bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+"/v2/", nil)
	if err != nil {
		return err
	}
	var resp *http.Response
	if fallback {
		resp, err = c.sendLogged(req)
	} else {
		resp, err = c.sendRetrying(ctx, req)
	}
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		drain(resp)
		return nil
	case http.StatusUnauthorized:
		c.auth.setChallenges(resp, nil)
		drain(resp)
		return nil
	}
	return newRegistryError(resp, c.name(), kindOther)
}
