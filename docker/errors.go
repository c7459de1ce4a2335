package docker

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/redact"
	"github.com/imgcopy/imgcopy/types"
)

// Registry error codes we act on (distribution-spec "Error Codes").
const (
	codeManifestInvalid    = "MANIFEST_INVALID"
	codeManifestUnverified = "MANIFEST_UNVERIFIED"
	codeUnsupported        = "UNSUPPORTED"
	codeDigestInvalid      = "DIGEST_INVALID"
	codeTooManyRequests    = "TOOMANYREQUESTS"
	codeUnknown            = "UNKNOWN"
)

// errorDetail is one entry of a registry's {"errors":[...]} body.
type errorDetail struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// maxDetailLen bounds how much of an error's "detail" ends up in a message.
const maxDetailLen = 256

func (e errorDetail) String() string {
	s := e.Code
	if e.Message != "" {
		if s != "" {
			s += ": "
		}
		s += truncate(e.Message)
	}
	if d := compactDetail(e.Detail); d != "" {
		s += " (" + d + ")"
	}
	return s
}

func compactDetail(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	return truncate(strings.Join(strings.Fields(s), " "))
}

// truncate cuts s to about maxDetailLen bytes on a rune boundary.
func truncate(s string) string {
	if len(s) <= maxDetailLen {
		return s
	}
	n := maxDetailLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// parseErrorBody extracts error entries from a registry error body: the distribution-spec
// {"errors":[{code,message,detail}]}, the {"details": "..."} some token servers return, or a
// short plain-text body. It never fails; an empty or unknown body gives no entries.
func parseErrorBody(body []byte) []errorDetail {
	var spec struct {
		Errors  []errorDetail `json:"errors"`
		Details string        `json:"details"`
		Message string        `json:"message"`
		// An OAuth2 token endpoint's error (RFC 6749 section 5.2): {"error":"invalid_grant",
		// "error_description":"..."}. Raw, since registries put other things under "error".
		OAuthError       json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if err := json.Unmarshal(body, &spec); err == nil {
		var oauth string
		_ = json.Unmarshal(spec.OAuthError, &oauth)
		switch {
		case len(spec.Errors) > 0:
			return spec.Errors
		case spec.Details != "":
			return []errorDetail{{Message: spec.Details}}
		case spec.Message != "":
			return []errorDetail{{Message: spec.Message}}
		case oauth != "":
			return []errorDetail{{Code: truncate(oauth), Message: spec.ErrorDescription}}
		}
		return nil
	}
	var storage struct { // S3, GCS and Azure storage: <Error><Code>..</Code><Message>..</Message></Error>
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}
	if err := xml.Unmarshal(body, &storage); err == nil && storage.Code != "" {
		return []errorDetail{{Code: truncate(storage.Code), Message: strings.Join(strings.Fields(storage.Message), " ")}}
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	if text == "" || strings.HasPrefix(text, "<") { // HTML error pages say nothing useful
		return nil
	}
	return []errorDetail{{Message: truncate(text)}}
}

// redirectedAway reports whether resp answers a redirect the registry sent to another host
// (blob storage, a CDN), and names that host.
func redirectedAway(resp *http.Response) (string, bool) {
	req := resp.Request
	if req == nil || req.Response == nil {
		return "", false
	}
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	return req.URL.Host, req.URL.Host != first.URL.Host
}

// storageRefusal reports whether status, from storage a registry redirected to, refuses the
// request (S3 and Azure answer 403, GCS 400 for an expired signed URL) rather than say the
// object is missing or the storage is unavailable.
func storageRefusal(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
}

// objectKind says what a request was about, to choose the "not found" sentinel.
type objectKind int

const (
	kindOther      objectKind = iota
	kindManifest              // a manifest by tag or digest
	kindBlob                  // a blob by digest
	kindRepository            // the repository itself (its tag list)
)

// Registry error codes that say what is missing (distribution-spec "Error Codes").
const (
	codeNameUnknown     = "NAME_UNKNOWN"
	codeManifestUnknown = "MANIFEST_UNKNOWN"
	codeBlobUnknown     = "BLOB_UNKNOWN"
)

// rateLimitHeaders are the response headers worth quoting when a registry throttles us:
// Retry-After and the rate-limit headers of Docker Hub (RateLimit-*) and others (X-RateLimit-*).
var rateLimitHeaders = []string{
	"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
}

// registryError is an unexpected HTTP response from a registry. It matches, with errors.Is,
// the sentinels its status and error codes map to (types.ErrUnauthorized,
// types.ErrCredentialsRefused, types.ErrDenied,
// types.ErrNotFoundOrDenied, types.ErrManifestNotFound, types.ErrBlobNotFound,
// types.ErrRepositoryNotFound, types.ErrRateLimited).
type registryError struct {
	status    int
	method    string
	url       string // sanitized
	name      string // HOST/REPO
	details   []errorDetail
	rateLimit string // the rate-limit headers of a 429, "Retry-After: 60, RateLimit-Remaining: 0"
	sentinels []error
	// retryAfter is the answer's Retry-After, when it had one (hasRetryAfter), for a retry
	// made after the response is gone (an upload sent again).
	retryAfter    time.Duration
	hasRetryAfter bool
	// writeDenied: the registry refused a write (push, delete) because the token issued for
	// the credentials does not grant it (denyWrite).
	writeDenied bool
	// storage is the host of the storage the registry redirected the request to, when that
	// storage refused it (storageRefusal), else "".
	storage string
	// immutableTag is the tag a manifest PUT was refused for because the registry protects
	// it from being moved (markImmutableTag), else "".
	immutableTag string
}

// markImmutableTag makes e, the refusal of a manifest PUT to tag, the protection of an
// existing tag it is when the registry says so: Harbor answers 412 PRECONDITION ("... configured
// as immutable"), ECR 400 TAG_INVALID ("... cannot be overwritten because the repository is
// immutable"), Docker Hub and older Harbor 403. Such a 403 is no lack of access: the advice to
// check credentials would mislead, so it loses types.ErrDenied (class auth, exit 4).
func (e *registryError) markImmutableTag(tag string) {
	switch {
	case e.status == http.StatusPreconditionFailed:
	case e.status >= 400 && e.status < 500 && e.status != http.StatusUnauthorized && e.mentions("immutable"):
	default:
		return
	}
	e.immutableTag = tag
	e.sentinels = slices.DeleteFunc(e.sentinels, func(s error) bool {
		return s == types.ErrDenied || s == types.ErrNotFoundOrDenied
	})
}

// mentions reports whether one of the registry's error messages or details contains word
// (in any case).
func (e *registryError) mentions(word string) bool {
	for _, d := range e.details {
		if strings.Contains(strings.ToLower(d.Message+" "+string(d.Detail)), word) {
			return true
		}
	}
	return false
}

// denyWrite makes a 401 refusing a write to a token issued for credentials (writeScopeRefused)
// the denial it is: the credentials were accepted, but do not allow writing to the repository
// (types.ErrDenied, not "authentication required", whose advice to log in misleads).
func (e *registryError) denyWrite() {
	e.writeDenied = true
	e.sentinels = slices.DeleteFunc(e.sentinels, func(s error) bool {
		return s == types.ErrUnauthorized || s == types.ErrCredentialsRefused
	})
	e.sentinels = append(e.sentinels, types.ErrDenied)
}

// writeScopeRefused reports whether resp refuses a write (anything but GET and HEAD) made with
// a Bearer token as not granted by that token: a 401 whose challenge says
// error="insufficient_scope", as distribution, Docker Hub and others answer a push to a
// repository the user may only pull from.
func writeScopeRefused(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized || resp.Request == nil || sentBearer(resp) == "" {
		return false
	}
	if m := resp.Request.Method; m == http.MethodGet || m == http.MethodHead {
		return false
	}
	for _, c := range parseAuthHeader(resp.Header.Values("WWW-Authenticate")) {
		if c.Scheme == "bearer" && c.Params["error"] == "insufficient_scope" {
			return true
		}
	}
	return false
}

// newRegistryError reads (a capped amount of) resp's body and closes it. It is the one place
// that maps HTTP statuses and registry error codes onto our sentinels; pullOnly says that the
// client only reads from the repository (see ambiguousDenial).
func newRegistryError(resp *http.Response, name string, kind objectKind, pullOnly bool) error {
	body, _ := readMetadata(resp, iolimits.MaxErrorBodySize)
	resp.Body.Close()
	e := &registryError{
		status: resp.StatusCode, method: resp.Request.Method, url: redact.URL(resp.Request.URL),
		name: name, details: parseErrorBody(body),
	}
	if host, ok := redirectedAway(resp); ok && storageRefusal(resp.StatusCode) {
		// Storage the registry sent us to refused: not the registry's judgement of our
		// credentials (no auth sentinels), and not an absent blob.
		e.storage = host
		return e
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		e.sentinels = append(e.sentinels, types.ErrUnauthorized)
		if strings.HasPrefix(resp.Request.Header.Get("Authorization"), "Basic ") {
			// A user name and password were sent (to the registry or its token server).
			e.sentinels = append(e.sentinels, types.ErrCredentialsRefused)
		}
	case http.StatusForbidden:
		e.sentinels = append(e.sentinels, types.ErrDenied)
	case http.StatusTooManyRequests:
		e.sentinels = append(e.sentinels, types.ErrRateLimited)
	}
	denied := resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
	if denied && pullOnly && kind != kindOther && ambiguousDenial(resp) {
		e.sentinels = append(e.sentinels, types.ErrNotFoundOrDenied)
	}
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 400 && len(e.sentinels) == 0 {
		e.sentinels = append(e.sentinels, notFoundSentinels(e, kind)...)
	}
	if e.hasCode(codeTooManyRequests) && resp.StatusCode != http.StatusTooManyRequests {
		e.sentinels = append(e.sentinels, types.ErrRateLimited)
	}
	if len(e.sentinels) == 0 && unavailableStatus(resp.StatusCode) {
		// Still unavailable after every retry: the registry or a gateway in front of it is
		// down or overloaded, a failure to reach it, like a refused connection, that a later
		// run may not meet.
		e.sentinels = append(e.sentinels, types.ErrNetwork)
	}
	if e.is(types.ErrRateLimited) {
		e.rateLimit = rateLimitInfo(resp.Header)
	}
	e.retryAfter, e.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// oauthRefusals are the OAuth2 token endpoint errors (RFC 6749 section 5.2) that refuse the
// grant we sent (an identity token, a user name and password) rather than the request's form.
var oauthRefusals = []string{"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"}

// tokenRefusal makes a token endpoint's answer that refuses our grant with an OAuth2 error
// and a status other than 401 (400 invalid_grant for an expired or revoked identity token) an
// authentication failure (types.ErrUnauthorized) like a 401, rather than an unclassified 400.
func (e *registryError) tokenRefusal() {
	if e.status != http.StatusUnauthorized && !e.is(types.ErrUnauthorized) && e.hasCode(oauthRefusals...) {
		e.sentinels = append(e.sentinels, types.ErrUnauthorized)
	}
}

// unavailableStatus reports whether status says that the registry could not be reached or
// could not serve now (502 Bad Gateway, 503 Service Unavailable, 504 Gateway Timeout), rather
// than that it failed on this request (500, 501).
func unavailableStatus(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// ambiguousDenial reports whether a 401/403 answer to a read may just as well mean that the
// repository does not exist. Docker Hub, Quay, GHCR and others refuse a missing repository
// instead of answering 404, so as not to reveal which names exist: with a token, or anonymously,
// the GET of a missing repository's manifest gets 401 with error="insufficient_scope", or 403
// DENIED. A 401 that asks for credentials we did not send, or refuses Basic credentials, is
// plain "authentication required".
func ambiguousDenial(resp *http.Response) bool {
	if m := resp.Request.Method; m != http.MethodGet && m != http.MethodHead {
		return false
	}
	if resp.StatusCode == http.StatusForbidden {
		return true
	}
	for _, c := range parseAuthHeader(resp.Header.Values("WWW-Authenticate")) {
		if c.Params["error"] == "insufficient_scope" {
			return true
		}
	}
	return strings.HasPrefix(resp.Request.Header.Get("Authorization"), "Bearer ")
}

// notFoundSentinels returns the "not found" sentinels for a 404 (by what was asked for) or for
// another failure status whose error codes say something is missing.
func notFoundSentinels(e *registryError, kind objectKind) []error {
	var out []error
	if e.hasCode(codeNameUnknown) {
		out = append(out, types.ErrRepositoryNotFound)
	}
	switch {
	case kind == kindManifest && (e.status == http.StatusNotFound || e.hasCode(codeManifestUnknown, codeNameUnknown)):
		out = append(out, types.ErrManifestNotFound)
	case kind == kindBlob && (e.status == http.StatusNotFound || e.hasCode(codeBlobUnknown, codeNameUnknown)):
		out = append(out, types.ErrBlobNotFound)
	case kind == kindRepository && e.status == http.StatusNotFound && len(out) == 0:
		out = append(out, types.ErrRepositoryNotFound)
	}
	return out
}

// rateLimitInfo renders the rate-limit headers present in h, or "".
func rateLimitInfo(h http.Header) string {
	var parts []string
	for _, k := range rateLimitHeaders {
		if v := h.Get(k); v != "" {
			parts = append(parts, k+": "+truncate(strings.Join(strings.Fields(v), " ")))
		}
	}
	return strings.Join(parts, ", ")
}

func (e *registryError) Error() string {
	var b strings.Builder
	switch {
	case e.storage != "":
		fmt.Fprintf(&b, "%s redirected the download to storage at %s, which refused it (usually a signed URL that expired before use, or this machine's clock being off): ", e.name, e.storage)
	case e.immutableTag != "":
		fmt.Fprintf(&b, "tag %s is immutable in %s: the registry refuses to point it at another manifest (push under a new tag, or delete the tag first where the registry allows it): ", e.immutableTag, e.name)
	case e.writeDenied:
		fmt.Fprintf(&b, "access denied to %s: the registry accepted the credentials but does not let them write to this repository: ", e.name)
	case e.is(types.ErrNotFoundOrDenied):
		fmt.Fprintf(&b, "%s: not found or not authorized (the repository may not exist, or reading it needs other credentials): ", e.name)
	case e.status == http.StatusUnauthorized || e.is(types.ErrUnauthorized):
		fmt.Fprintf(&b, "authentication required for %s: ", e.name)
	case e.status == http.StatusForbidden:
		fmt.Fprintf(&b, "access denied to %s: ", e.name)
	case e.is(types.ErrRateLimited):
		fmt.Fprintf(&b, "rate limited by %s: ", e.name)
	case e.is(types.ErrRepositoryNotFound):
		fmt.Fprintf(&b, "repository %s not found: ", e.name)
	case e.is(types.ErrManifestNotFound):
		fmt.Fprintf(&b, "manifest not found: repository or tag not found in %s: ", e.name)
	case e.is(types.ErrBlobNotFound):
		fmt.Fprintf(&b, "blob not found in %s: ", e.name)
	}
	fmt.Fprintf(&b, "%s %s: %d %s", e.method, e.url, e.status, http.StatusText(e.status))
	for _, d := range e.details {
		b.WriteString("; " + d.String())
	}
	if e.rateLimit != "" {
		b.WriteString(" (" + e.rateLimit + ")")
	}
	return b.String()
}

// Is matches the sentinels for the status and error codes.
func (e *registryError) Is(target error) bool { return e.is(target) }

func (e *registryError) is(target error) bool {
	for _, s := range e.sentinels {
		if s == target {
			return true
		}
	}
	return false
}

// hasCode reports whether the registry sent one of codes.
func (e *registryError) hasCode(codes ...string) bool {
	for _, d := range e.details {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// asRegistryError returns err's registryError, if any.
func asRegistryError(err error) (*registryError, bool) {
	var re *registryError
	ok := errors.As(err, &re)
	return re, ok
}
