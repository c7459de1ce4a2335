// Package proxyerr names an HTTP proxy (from HTTPS_PROXY/HTTP_PROXY) that refuses to carry a
// request, for the registry transport and the foreign-layer fetcher alike: net/http reports a
// refused CONNECT only by its status text ("Forbidden"), which reads as the server's answer.
package proxyerr

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/imgcopy/imgcopy/internal/redact"
	"github.com/imgcopy/imgcopy/types"
)

// Refused is a proxy's answer other than 200 to a CONNECT request, or its 407 to a plain-HTTP
// request. It matches types.ErrProxyRefused and types.ErrNetwork; Proxy is the proxy's URL
// without credentials ("" when unknown), Target the host it was asked to reach.
type Refused struct {
	Proxy, Target, Status string
	Code                  int
}

func (e *Refused) Error() string {
	name := "a proxy"
	if e.Proxy != "" {
		name = "proxy " + e.Proxy
	}
	msg := fmt.Sprintf("%s refused to connect to %s: %s", name, e.Target, e.Status)
	if e.Code == http.StatusProxyAuthRequired {
		msg += " (the proxy wants credentials: put them in its URL, http://USER:PASSWORD@HOST:PORT, or check the ones there)"
	}
	return msg
}

// Is makes errors.Is(err, types.ErrProxyRefused) and errors.Is(err, types.ErrNetwork) true.
func (e *Refused) Is(target error) bool {
	return target == types.ErrProxyRefused || target == types.ErrNetwork
}

// Retryable reports whether asking again may help: a proxy's 5xx (its upstream failed), not a
// refusal (403, 407).
func (e *Refused) Retryable() bool { return e.Code >= 500 }

// OnConnectResponse is an http.Transport's OnProxyConnectResponse: a proxy's answer other than
// 200 to CONNECT becomes a *Refused naming the proxy without its credentials.
func OnConnectResponse(_ context.Context, proxy *url.URL, req *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return &Refused{Proxy: redact.URL(proxy), Target: req.Host, Status: resp.Status, Code: resp.StatusCode}
}
