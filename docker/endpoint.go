package docker

import (
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/proxyerr"
	"github.com/imgcopy/imgcopy/internal/tlsconfig"
	"github.com/imgcopy/imgcopy/types"
)

// endpoint is what the clients of one process share for a registry host reached with the same
// TLS settings: one HTTP transport, so that they reuse connections (and TLS sessions) instead
// of opening their own, and, once a client pinged the registry, the scheme it answers on and
// its authentication challenge, so that later clients skip the ping. A sync opens a source and
// a destination client per image, several times over; without this each of them paid a
// connection, a ping and, over HTTPS, a handshake.
type endpoint struct {
	transport *http.Transport
	// pingMu lets one client ping at a time, so that clients starting together ping once.
	pingMu sync.Mutex
	// warmFailure is the failure of a warm-up ping (reference.Warm), for the next client that
	// pings to report instead of pinging again; guarded by pingMu.
	warmFailure *pingFailure
	// failure is the last ping that failed after all its retries, and when; a client that
	// pings within pingFailureReuse of it reports it instead of pinging again. Guarded by
	// pingMu.
	failure  error
	failedAt time.Time

	mu        sync.Mutex
	base      *url.URL   // nil until a ping succeeded
	challenge *challenge // nil when the registry did not ask for authentication

	tokens tokenCache // the Bearer tokens of every client of the registry
}

// pingFailureReuse is how long a ping's failure (after all its retries) answers the clients
// of the registry that ping after it: a sync of 2,000 images into a registry that is down
// pinged it once per image, one after the other (the endpoint lets one client ping at a
// time), each with its retries: hours before the run could say the registry was down. A
// registry pinged successfully once is not pinged again, so this only concerns a registry
// not reached yet.
const pingFailureReuse = 10 * time.Second

// pingFailure is a failed ping's error.
type pingFailure struct{ err error }

// endpointKey is everything a transport's TLS configuration and the ping's outcome depend on.
type endpointKey struct {
	host     string
	certDir  string
	insecure bool
}

// endpoints maps endpointKey to *endpoint, for the life of the process; it holds one entry per
// registry host and TLS setting used.
var endpoints sync.Map

// sharedEndpoint returns the endpoint of host under sys's TLS settings, creating it (and its
// transport, reading certs.d) on first use.
func sharedEndpoint(sys *types.SystemContext, host string) (*endpoint, error) {
	key := endpointKey{host: host}
	if sys != nil {
		key.certDir, key.insecure = sys.CertDir, sys.InsecureSkipTLSVerify == types.OptionalBoolTrue
	}
	if ep, ok := endpoints.Load(key); ok {
		return ep.(*endpoint), nil
	}
	tlsCfg, err := tlsconfig.ForHost(sys, host)
	if err != nil {
		return nil, errors.Wrapf(err, "configuring TLS for %s", host)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.OnProxyConnectResponse = proxyerr.OnConnectResponse
	if tr.DialContext != nil {
		tr.DialContext = bulkDialer(tr.DialContext)
	}
	ep, _ := endpoints.LoadOrStore(key, &endpoint{transport: tr})
	return ep.(*endpoint), nil
}

// pinged returns what an earlier ping learnt: the base URL and challenge, or nil.
func (e *endpoint) pinged() (*url.URL, *challenge) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.base, e.challenge
}

// remember records the outcome of a successful ping.
func (e *endpoint) remember(base *url.URL, ch *challenge) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.base, e.challenge = base, ch
}

// setChallenge presets the challenge an earlier client's ping of the same registry received.
func (a *authenticator) setChallenge(c challenge) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.challenge = &c
}
