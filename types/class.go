package types

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"net"
	"net/url"

	"github.com/pkg/errors"
)

// ErrorClass sorts errors into the few kinds a script can act on; each has its own exit code
// in the CLI and its own name in JSON output. Classify finds the class of any error.
type ErrorClass int

const (
	// ClassOther is any failure not in another class (exit code 1).
	ClassOther ErrorClass = iota
	// ClassUsage is a mistake on the command line or in a reference or config file (exit 2).
	ClassUsage
	// ClassNotFound is a missing repository, tag, manifest, blob or file (exit 3).
	ClassNotFound
	// ClassAuth is missing, refused or insufficient credentials (exit 4). A registry that
	// answers 401/403 for a repository that may not exist is in this class too.
	ClassAuth
	// ClassRateLimited is a registry that kept refusing with 429 after every retry (exit 5).
	ClassRateLimited
	// ClassVerification is content that does not match its digest or size, or a bad
	// signature of a schema1 manifest (exit 6).
	ClassVerification
	// ClassNetwork is a connection, TLS or timeout failure after every retry (exit 7).
	ClassNetwork
	// ClassInterrupted is a cancelled operation, e.g. Ctrl-C (exit 130).
	ClassInterrupted
)

var classNames = map[ErrorClass]string{
	ClassOther:        "other",
	ClassUsage:        "usage",
	ClassNotFound:     "not-found",
	ClassAuth:         "auth",
	ClassRateLimited:  "rate-limited",
	ClassVerification: "verification",
	ClassNetwork:      "network",
	ClassInterrupted:  "interrupted",
}

var classExitCodes = map[ErrorClass]int{
	ClassOther:        1,
	ClassUsage:        2,
	ClassNotFound:     3,
	ClassAuth:         4,
	ClassRateLimited:  5,
	ClassVerification: 6,
	ClassNetwork:      7,
	ClassInterrupted:  130,
}

// String returns the class's name as used in JSON output and reports, e.g. "not-found".
func (c ErrorClass) String() string {
	if s, ok := classNames[c]; ok {
		return s
	}
	return "other"
}

// ExitCode returns the CLI exit status for the class.
func (c ErrorClass) ExitCode() int {
	if n, ok := classExitCodes[c]; ok {
		return n
	}
	return 1
}

// ClassedError is implemented by errors that know their class; Classify asks them first, so a
// transport can classify an error the sentinels below do not cover.
type ClassedError interface {
	error
	ErrorClass() ErrorClass
}

var (
	// ErrUsage marks a mistake by the caller: a malformed reference, a bad option value, an
	// invalid config file. Wrap it (or return a ClassedError) so Classify gives ClassUsage.
	ErrUsage = errors.New("invalid usage")
	// ErrRateLimited is returned (wrapped) when a registry kept answering 429 Too Many Requests
	// after every retry.
	ErrRateLimited = errors.New("rate limited by the registry")
	// ErrNetwork is returned (wrapped) for transfer failures that are the network's fault and
	// that the standard library does not already describe as a net.Error, e.g. a transfer that
	// stalled for longer than the read timeout.
	ErrNetwork = errors.New("network failure")
	// ErrSignatureInvalid is returned (wrapped) when a signed manifest's signature does not verify.
	ErrSignatureInvalid = errors.New("invalid signature")
)

// Classify returns the class of err; nil is ClassOther. When err wraps errors of several
// classes (a failure plus a Close error), the first one found depth-first decides, except that
// a cancellation always wins.
func Classify(err error) ErrorClass {
	if err == nil {
		return ClassOther
	}
	if errors.Is(err, context.Canceled) {
		return ClassInterrupted
	}
	var ce ClassedError
	if errors.As(err, &ce) {
		return ce.ErrorClass()
	}
	for _, s := range sentinelClasses {
		if errors.Is(err, s.err) {
			return s.class
		}
	}
	if isNetworkError(err) {
		return ClassNetwork
	}
	return ClassOther
}

// sentinelClasses maps sentinels onto classes, checked in order.
var sentinelClasses = []struct {
	err   error
	class ErrorClass
}{
	{ErrUsage, ClassUsage},
	{ErrUnknownTransport, ClassUsage},
	{ErrDigestMismatch, ClassVerification},
	{ErrSignatureInvalid, ClassVerification},
	{ErrUnauthorized, ClassAuth},
	{ErrDenied, ClassAuth},
	{ErrRateLimited, ClassRateLimited},
	{ErrManifestNotFound, ClassNotFound},
	{ErrBlobNotFound, ClassNotFound},
	{fs.ErrNotExist, ClassNotFound},
	{ErrNetwork, ClassNetwork},
	{context.DeadlineExceeded, ClassNetwork},
}

// isNetworkError recognizes the standard library's connection, DNS, TLS and certificate errors.
func isNetworkError(err error) bool {
	var (
		netErr      net.Error
		opErr       *net.OpError
		dnsErr      *net.DNSError
		urlErr      *url.Error
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalidCert x509.CertificateInvalidError
		verifyErr   *tls.CertificateVerificationError
		recordHdr   tls.RecordHeaderError
	)
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &urlErr) ||
		errors.As(err, &netErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostname) ||
		errors.As(err, &invalidCert) || errors.As(err, &verifyErr) || errors.As(err, &recordHdr)
}
