package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/proxyerr"
	"github.com/imgcopy/imgcopy/types"
)

const (
	defaultRetryTimes = 3
	defaultRetryDelay = time.Second
	maxRetryDelay     = 60 * time.Second
	// maxRetryAfter bounds how long a registry's Retry-After can make us wait.
	maxRetryAfter = 5 * time.Minute
)

// retryPolicy bounds the retries of one registry request.
type retryPolicy struct {
	times int           // retries after the first try
	delay time.Duration // first back-off delay, doubled per retry
}

func newRetryPolicy(sys *types.SystemContext) retryPolicy {
	p := retryPolicy{times: defaultRetryTimes, delay: defaultRetryDelay}
	if sys != nil {
		if sys.RetryTimes != nil && *sys.RetryTimes >= 0 {
			p.times = *sys.RetryTimes
		}
		if sys.RetryDelay > 0 {
			p.delay = sys.RetryDelay
		}
	}
	return p
}

// backoff returns the delay before retry number attempt (0-based): exponential growth
// capped at maxRetryDelay, with jitter in [d/2, d].
func (p retryPolicy) backoff(attempt int) time.Duration {
	d := p.delay
	for i := 0; i < attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, maxRetryDelay)
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	return time.Duration(half + rand.Int64N(half+1))
}

// delayFor returns the delay before retrying after resp: the registry's Retry-After when it
// sent one, else the back-off.
func (p retryPolicy) delayFor(attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return d
		}
	}
	return p.backoff(attempt)
}

// parseRetryAfter parses delay-seconds or an HTTP-date, capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// retryableStatus reports whether a response status is worth retrying: 408, 429 and 5xx
// other than "not implemented" and "version not supported".
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return code >= 500 && code <= 599
}

// retryableError reports whether a transport error is worth retrying: network failures
// are; cancellation, TLS/certificate problems, HTTP-level errors (classified by status
// instead) and local errors (credentials, bad URLs) are not.
func retryableError(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := asRegistryError(err); ok {
		return false
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &recordHeader) {
		return false
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return false
	}
	if errors.Is(err, types.ErrClientCertRefused) {
		return false
	}
	var proxyRefused *proxyerr.Refused
	if errors.As(err, &proxyRefused) {
		return proxyRefused.Retryable()
	}
	var te *transportError
	var ne net.Error
	return errors.As(err, &te) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// sleeper waits for d or until ctx is done. Tests replace it through the context so that no
// test sleeps.
type sleeper func(ctx context.Context, d time.Duration) error

type sleeperKey struct{}

// withSleeper returns a context whose retries wait with s.
func withSleeper(ctx context.Context, s sleeper) context.Context {
	return context.WithValue(ctx, sleeperKey{}, s)
}

func sleep(ctx context.Context, d time.Duration) error {
	if s, ok := ctx.Value(sleeperKey{}).(sleeper); ok {
		return s(ctx, d)
	}
	return ctxio.Sleep(ctx, d)
}
