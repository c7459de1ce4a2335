package types

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	stderrors "errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/pkg/errors"
)

type classed struct{ c ErrorClass }

var _ ClassedError = classed{}

func (e classed) Error() string          { return "classed" }
func (e classed) ErrorClass() ErrorClass { return e.c }

// wrapping is an error node with its own Is (matching one sentinel) that also wraps a cause.
type wrapping struct{ is, cause error }

func (w wrapping) Error() string        { return "wrapping" }
func (w wrapping) Is(target error) bool { return target == w.is }
func (w wrapping) Unwrap() error        { return w.cause }

// deepChain wraps a network error n times; Classify gives up beyond its depth bound.
func deepChain(n int) error {
	var err error = &net.OpError{Op: "dial"}
	for range n {
		err = errors.WithMessage(err, "x")
	}
	return err
}

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want ErrorClass
		exit int
	}{
		{"nil", nil, ClassOther, 1},
		{"plain", errors.New("boom"), ClassOther, 1},
		{"usage", errors.Wrap(ErrUsage, "bad flag"), ClassUsage, 2},
		{"unknown transport", errors.Wrap(ErrUnknownTransport, "x"), ClassUsage, 2},
		{"manifest not found", errors.Wrap(ErrManifestNotFound, "reading"), ClassNotFound, 3},
		{"blob not found", errors.Wrap(ErrBlobNotFound, "reading"), ClassNotFound, 3},
		{"file not found", errors.Wrap(&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}, "opening"), ClassNotFound, 3},
		{"unauthorized", errors.Wrap(ErrUnauthorized, "GET"), ClassAuth, 4},
		{"credentials refused", errors.Wrap(ErrCredentialsRefused, "GET"), ClassAuth, 4},
		{"denied", fmt.Errorf("push: %w", ErrDenied), ClassAuth, 4},
		{"rate limited", errors.Wrap(ErrRateLimited, "GET"), ClassRateLimited, 5},
		{"digest mismatch", errors.Wrap(DigestMismatchError{Expected: "a", Actual: "b"}, "blob"), ClassVerification, 6},
		{"signature", errors.Wrap(ErrSignatureInvalid, "schema1"), ClassVerification, 6},
		{"dial", errors.Wrap(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}, "GET"), ClassNetwork, 7},
		{"x509", errors.Wrap(x509.UnknownAuthorityError{}, "GET"), ClassNetwork, 7},
		{"stalled", errors.Wrap(ErrNetwork, "no bytes for 30s"), ClassNetwork, 7},
		{"deadline", errors.Wrap(context.DeadlineExceeded, "GET"), ClassNetwork, 7},
		{"canceled", errors.Wrap(context.Canceled, "copying"), ClassInterrupted, 130},
		{"canceled wins over a close error", stderrors.Join(errors.Wrap(ErrManifestNotFound, "a"), context.Canceled), ClassInterrupted, 130},
		{"ClassedError wins", errors.Wrap(classed{ClassAuth}, "x"), ClassAuth, 4},
		{"first of two", stderrors.Join(errors.Wrap(ErrBlobNotFound, "a"), errors.New("close failed")), ClassNotFound, 3},
		{"first failure beats a classed close error", AddCloseError(errors.Wrap(ErrBlobNotFound, "a"), classed{ClassAuth}, "closing"), ClassNotFound, 3},
		{"close error alone", AddCloseError(nil, &net.OpError{Op: "write", Err: errors.New("reset")}, "closing"), ClassNetwork, 7},
		{"classified close error after an unclassified failure", AddCloseError(errors.New("boom"), errors.Wrap(ErrDigestMismatch, "x"), "closing"), ClassVerification, 6},
		{"outer ClassedError beats an inner sentinel", UsageError{errors.Wrap(ErrManifestNotFound, "x")}, ClassUsage, 2},
		{"outer sentinel beats an inner network error", errors.Wrap(wrapping{ErrRateLimited, &net.OpError{Op: "dial"}}, "GET"), ClassRateLimited, 5},
		{"usage error", UsageError{errors.New("bad reference")}, ClassUsage, 2},
		{"repository not found", errors.Wrap(ErrRepositoryNotFound, "tags"), ClassNotFound, 3},
		{"not found or denied", errors.Wrap(ErrNotFoundOrDenied, "GET"), ClassAuth, 4},
		{"invalid auth file", errors.Wrap(ErrInvalidAuthFile, "parsing"), ClassUsage, 2},
		{"invalid certificate", errors.Wrap(ErrInvalidCertificate, "loading"), ClassUsage, 2},
		{"invalid manifest", errors.Wrap(ErrInvalidManifest, "parsing"), ClassOther, 1},
		{"invalid layout", errors.Wrap(ErrInvalidLayout, "index.json"), ClassOther, 1},
		{"unsafe path", errors.Wrap(ErrUnsafePath, "../x"), ClassOther, 1},
		{"url error", &url.Error{Op: "Get", URL: "https://x", Err: errors.New("EOF")}, ClassNetwork, 7},
		{"tls record header", errors.Wrap(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "GET"), ClassNetwork, 7},
		{"cyclic-looking deep chain", deepChain(500), ClassOther, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Classify(tc.err)
			if got != tc.want {
				t.Fatalf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if got.ExitCode() != tc.exit {
				t.Fatalf("%v.ExitCode() = %d, want %d", got, got.ExitCode(), tc.exit)
			}
		})
	}
}

func TestErrorClassNames(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for c := ClassOther; c <= ClassInterrupted; c++ {
		s := c.String()
		if seen[s] {
			t.Fatalf("two classes are named %q", s)
		}
		seen[s] = true
	}
	if got := ErrorClass(99).String(); got != "other" {
		t.Fatalf("unknown class String() = %q, want other", got)
	}
}

func TestUsageError(t *testing.T) {
	t.Parallel()
	inner := errors.Wrap(ErrUnknownTransport, "foo:bar")
	err := errors.Wrap(UsageError{inner}, "parsing")
	if !errors.Is(err, ErrUsage) || !errors.Is(err, ErrUnknownTransport) {
		t.Fatalf("UsageError hides ErrUsage or its cause: %v", err)
	}
	if got := (UsageError{inner}).Error(); got != inner.Error() {
		t.Fatalf("UsageError message %q, want the cause's %q", got, inner.Error())
	}
}

func TestAddCloseError(t *testing.T) {
	t.Parallel()
	first := errors.Wrap(ErrBlobNotFound, "fetching")
	closeErr := errors.Wrap(ErrNetwork, "flushing")
	cases := []struct {
		name          string
		err, closeErr error
		wantNil       bool
		wantIs        []error
		wantText      []string
	}{
		{name: "nothing failed", wantNil: true},
		{name: "no close error", err: first, wantIs: []error{ErrBlobNotFound}, wantText: []string{"fetching"}},
		{name: "only close failed", closeErr: closeErr, wantIs: []error{ErrNetwork}, wantText: []string{"closing x: flushing"}},
		{name: "both", err: first, closeErr: closeErr, wantIs: []error{ErrBlobNotFound, ErrNetwork}, wantText: []string{"fetching: blob not found (also closing x: flushing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := AddCloseError(tc.err, tc.closeErr, "closing x")
			if (got == nil) != tc.wantNil {
				t.Fatalf("AddCloseError = %v", got)
			}
			for _, w := range tc.wantIs {
				if !errors.Is(got, w) {
					t.Errorf("%v does not match %v", got, w)
				}
			}
			for _, w := range tc.wantText {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("%q does not contain %q", got.Error(), w)
				}
			}
		})
	}
	if s := fmt.Sprintf("%+v", AddCloseError(first, closeErr, "closing x")); !strings.Contains(s, "class_test.go") {
		t.Errorf("%%+v does not show the stack: %s", s)
	}
}
