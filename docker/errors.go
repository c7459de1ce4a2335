package docker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
)

// Registry error codes we act on (distribution-spec "Error Codes").
const (
	codeManifestInvalid    = "MANIFEST_INVALID"
	codeManifestUnverified = "MANIFEST_UNVERIFIED"
	codeUnsupported        = "UNSUPPORTED"
	codeTooManyRequests    = "TOOMANYREQUESTS"
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
	}
	if err := json.Unmarshal(body, &spec); err == nil {
		switch {
		case len(spec.Errors) > 0:
			return spec.Errors
		case spec.Details != "":
			return []errorDetail{{Message: spec.Details}}
		case spec.Message != "":
			return []errorDetail{{Message: spec.Message}}
		}
		return nil
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	if text == "" || strings.HasPrefix(text, "<") { // HTML error pages say nothing useful
		return nil
	}
	return []errorDetail{{Message: truncate(text)}}
}

// objectKind says what a request was about, to choose the "not found" sentinel.
type objectKind int

const (
	kindOther objectKind = iota
	kindManifest
	kindBlob
)

// registryError is an unexpected HTTP response from a registry. It matches the sentinel its
// status maps to (types.ErrUnauthorized, types.ErrDenied, types.ErrManifestNotFound,
// types.ErrBlobNotFound) with errors.Is.
type registryError struct {
	status   int
	method   string
	url      string // sanitized
	name     string // HOST/REPO
	details  []errorDetail
	sentinel error // nil when the status has none
}

// newRegistryError reads (a capped amount of) resp's body and closes it. It is the one place
// that maps HTTP status codes onto our sentinels.
func newRegistryError(resp *http.Response, name string, kind objectKind) error {
	body, _ := iolimits.ReadAtMost(resp.Body, iolimits.MaxErrorBodySize)
	resp.Body.Close()
	e := &registryError{
		status: resp.StatusCode, method: resp.Request.Method, url: sanitizeURL(resp.Request.URL),
		name: name, details: parseErrorBody(body),
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		e.sentinel = types.ErrUnauthorized
	case http.StatusForbidden:
		e.sentinel = types.ErrDenied
	case http.StatusNotFound:
		switch kind {
		case kindManifest:
			e.sentinel = types.ErrManifestNotFound
		case kindBlob:
			e.sentinel = types.ErrBlobNotFound
		}
	}
	return e
}

func (e *registryError) Error() string {
	var b strings.Builder
	switch e.status {
	case http.StatusUnauthorized:
		fmt.Fprintf(&b, "authentication required for %s: ", e.name)
	case http.StatusForbidden:
		fmt.Fprintf(&b, "access denied to %s: ", e.name)
	case http.StatusNotFound:
		if e.sentinel != nil {
			fmt.Fprintf(&b, "%v: ", e.sentinel)
		}
		fmt.Fprintf(&b, "repository or tag not found in %s: ", e.name)
	}
	fmt.Fprintf(&b, "%s %s: %d %s", e.method, e.url, e.status, http.StatusText(e.status))
	for _, d := range e.details {
		b.WriteString("; " + d.String())
	}
	return b.String()
}

// Is matches the sentinel for the status.
func (e *registryError) Is(target error) bool {
	return e.sentinel != nil && target == e.sentinel
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

// sanitizeURL renders u for logs and errors without userinfo, query or fragment, which may
// carry credentials or signed tokens (redirected blob URLs).
func sanitizeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, Opaque: u.Opaque}
	return c.String()
}

// asRegistryError returns err's registryError, if any.
func asRegistryError(err error) (*registryError, bool) {
	var re *registryError
	ok := errors.As(err, &re)
	return re, ok
}
