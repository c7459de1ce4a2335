package types

import (
	"context"
	"crypto/x509"
	stderrors "errors"
	"fmt"
	"io/fs"
	"net"
	"testing"

	"github.com/pkg/errors"
)

type classed struct{ c ErrorClass }

func (e classed) Error() string          { return "classed" }
func (e classed) ErrorClass() ErrorClass { return e.c }

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
