package types

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"syscall"

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

// Classify returns the class of err; nil is ClassOther. It walks err's tree depth-first
// (through Unwrap() error and Unwrap() []error) and the first node that has a class decides:
// a ClassedError, a sentinel of types/errors.go (or a standard one: fs.ErrNotExist,
// context.DeadlineExceeded), or a connection, DNS or TLS error of the standard library. So
// when a failure has a Close error attached, the failure's class wins. A cancellation
// anywhere in the tree always wins.
func Classify(err error) ErrorClass {
	if err == nil {
		return ClassOther
	}
	if errors.Is(err, context.Canceled) {
		return ClassInterrupted
	}
	if c, ok := classifyTree(err, 0); ok {
		return c
	}
	return ClassOther
}

// maxClassifyDepth bounds the walk, so a cyclic or absurdly deep chain cannot hang Classify.
const maxClassifyDepth = 100

// classifyTree returns the class of the first node of err's tree that has one.
func classifyTree(err error, depth int) (ErrorClass, bool) {
	if err == nil || depth > maxClassifyDepth {
		return ClassOther, false
	}
	if c, ok := classifyNode(err); ok {
		return c, true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return classifyTree(u.Unwrap(), depth+1)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if c, ok := classifyTree(e, depth+1); ok {
				return c, true
			}
		}
	}
	return ClassOther, false
}

// classifyNode classifies err itself, without looking at what it wraps.
func classifyNode(err error) (ErrorClass, bool) {
	if ce, ok := err.(ClassedError); ok {
		return ce.ErrorClass(), true
	}
	is, hasIs := err.(interface{ Is(error) bool })
	for _, s := range sentinelClasses {
		if err == s.err || (hasIs && is.Is(s.err)) {
			return s.class, true
		}
	}
	if isNetworkError(err) {
		return ClassNetwork, true
	}
	return ClassOther, false
}

// isNetworkError recognizes the standard library's connection, DNS, TLS and certificate
// errors (only err itself, not what it wraps).
func isNetworkError(err error) bool {
	// A syscall.Errno satisfies net.Error, but most errnos (ENOSPC, EFBIG, EACCES) are local.
	if errno, ok := err.(syscall.Errno); ok {
		switch errno {
		case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.ETIMEDOUT,
			syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.EPIPE:
			return true
		}
		return false
	}
	switch err.(type) {
	case net.Error, *net.OpError, *net.DNSError, *url.Error,
		x509.UnknownAuthorityError, x509.HostnameError, x509.CertificateInvalidError,
		*tls.CertificateVerificationError, tls.RecordHeaderError:
		return true
	}
	return false
}
