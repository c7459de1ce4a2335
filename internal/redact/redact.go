// Package redact renders URLs for logs and error messages without the parts that may be
// secret: the one place every URL goes through before it is logged or put in an error.
package redact

import "net/url"

// URL renders u without userinfo, query or fragment, which may carry credentials or signed
// tokens (redirected blob URLs, foreign layer URLs); "" for nil.
func URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, Opaque: u.Opaque}
	return c.String()
}

// RawURL is URL for a URL not parsed yet; "<invalid URL>" when it does not parse.
func RawURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<invalid URL>"
	}
	return URL(u)
}
