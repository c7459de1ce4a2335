// Package urlfetch downloads foreign (non-distributable) layers from the URLs of their
// descriptors, for the copy engine (copy.Options.ForeignLayerFetcher). It lives apart from the
// transports so that only the CLI, which wires it in, links an HTTP client for it.
package urlfetch

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/proxyerr"
	"github.com/imgcopy/imgcopy/internal/redact"
	"github.com/imgcopy/imgcopy/internal/tlsconfig"
	"github.com/imgcopy/imgcopy/types"
)

// ErrInsecureURL is returned (wrapped, naming the host) for a plain-HTTP URL, or a redirect
// to one, when the source's TLS verification is on.
var ErrInsecureURL = errors.New("refusing a plain-HTTP URL")

// timeouts of one download; the body itself may take as long as it needs.
const (
	dialTimeout           = 30 * time.Second
	responseHeaderTimeout = 60 * time.Second
	idleConnTimeout       = 90 * time.Second
	maxRedirects          = 10
)

// Fetcher downloads blobs from URLs with the TLS settings of one side of a copy. It keeps one
// HTTP client per host, so that the downloads of a run share its connections.
type Fetcher struct {
	sys *types.SystemContext

	mu      sync.Mutex
	clients map[string]*http.Client // by host
}

// New returns a Fetcher using sys: HTTPS only, with the certs.d CAs of each URL's host, unless
// sys.InsecureSkipTLSVerify is true (--src-tls-verify=false), which also allows plain HTTP.
func New(sys *types.SystemContext) *Fetcher {
	return &Fetcher{sys: sys, clients: map[string]*http.Client{}}
}

// Fetch tries info.URLs in order and returns the first successful download and its size (-1
// when unknown). The caller verifies the content against info. URLs are named in errors and
// logs by scheme and host only: signed URLs carry tokens in their query.
func (f *Fetcher) Fetch(ctx context.Context, info types.BlobInfo) (io.ReadCloser, int64, error) {
	if len(info.URLs) == 0 {
		return nil, -1, errors.Wrapf(types.ErrBlobNotFound, "blob %s has no URLs", info.Digest)
	}
	var errs []error
	for _, s := range info.URLs {
		rc, size, err := f.fetchOne(ctx, s)
		if err == nil {
			return rc, size, nil
		}
		if ctx.Err() != nil {
			return nil, -1, ctx.Err()
		}
		logrus.WithFields(logrus.Fields{"digest": info.Digest, "url": redact.RawURL(s)}).Debugf("foreign layer download failed: %v", err)
		errs = append(errs, err)
	}
	last := errs[len(errs)-1]
	if len(errs) == 1 {
		return nil, -1, last
	}
	var others []string
	for _, e := range errs[:len(errs)-1] {
		others = append(others, e.Error())
	}
	return nil, -1, errors.Wrapf(last, "every URL of blob %s failed (also: %s)", info.Digest, strings.Join(others, "; "))
}

func (f *Fetcher) insecure() bool {
	return f.sys != nil && f.sys.InsecureSkipTLSVerify == types.OptionalBoolTrue
}

// checkURL accepts https URLs, and http ones only when insecure.
func (f *Fetcher) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && u.Host != "" && f.insecure():
		return nil
	case u.Scheme == "http":
		return errors.Wrapf(ErrInsecureURL, "%s (pass --src-tls-verify=false to allow it)", redact.URL(u))
	}
	return errors.Wrapf(types.ErrUsage, "unsupported URL %s", redact.URL(u))
}

func (f *Fetcher) fetchOne(ctx context.Context, raw string) (io.ReadCloser, int64, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, -1, errors.Wrapf(types.ErrUsage, "invalid URL: %v", sanitizeError(err))
	}
	if err := f.checkURL(u); err != nil {
		return nil, -1, err
	}
	client, err := f.client(u.Host)
	if err != nil {
		return nil, -1, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, -1, errors.Wrapf(err, "requesting %s", redact.RawURL(raw))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, -1, errors.Wrapf(sanitizeError(err), "downloading %s", redact.RawURL(raw))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, resp.ContentLength, nil
	case http.StatusNotFound:
		resp.Body.Close()
		return nil, -1, errors.Wrapf(types.ErrBlobNotFound, "downloading %s: 404 Not Found", redact.RawURL(raw))
	}
	resp.Body.Close()
	return nil, -1, errors.Errorf("downloading %s: %s", redact.RawURL(raw), resp.Status)
}

// client returns the HTTP client for host with its TLS settings; redirects must stay on HTTPS
// unless insecure.
func (f *Fetcher) client(host string) (*http.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.clients[host]; ok {
		return c, nil
	}
	tlsCfg, err := tlsconfig.ForHost(f.sys, host)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		OnProxyConnectResponse: proxyerr.OnConnectResponse, // names a proxy refusing the tunnel
		DialContext:            (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSClientConfig:        tlsCfg,
		TLSHandshakeTimeout:    dialTimeout,
		ResponseHeaderTimeout:  responseHeaderTimeout,
		IdleConnTimeout:        idleConnTimeout,
	}
	c := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return errors.Errorf("stopped after %d redirects", maxRedirects)
		}
		return f.checkURL(req.URL)
	}}
	f.clients[host] = c
	return c, nil
}

// sanitizeError strips the URL a *url.Error carries (it may hold a token) down to redact's form.
func sanitizeError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redact.RawURL(ue.URL), Err: ue.Err}
	}
	return err
}
