package types

import (
	"fmt"

	"github.com/pkg/errors"
)

var (
	// ErrBlobNotFound is returned (wrapped) when a blob does not exist at a source or destination.
	ErrBlobNotFound = errors.New("blob not found")
	// ErrManifestNotFound is returned (wrapped) when an image or manifest instance does not exist.
	ErrManifestNotFound = errors.New("manifest not found")
	// ErrDigestMismatch is returned (wrapped, naming the blob and both digests) when streamed
	// content does not match the digest or size it was announced with.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnauthorized is returned (wrapped) when a registry requires authentication that was
	// not provided or was refused.
	ErrUnauthorized = errors.New("authentication required")
	// ErrDenied is returned (wrapped) when credentials were accepted but the access is forbidden.
	ErrDenied = errors.New("access denied")
)

// ManifestTypeRejectedError is returned by ImageDestination.PutManifest when the destination
// refuses this manifest MIME type but might accept another one; the copy engine then tries
// the next candidate type.
type ManifestTypeRejectedError struct {
	MIMEType string
	Err      error
}

func (e ManifestTypeRejectedError) Error() string {
	return fmt.Sprintf("manifest type %s rejected: %v", e.MIMEType, e.Err)
}

// Unwrap returns the underlying cause.
func (e ManifestTypeRejectedError) Unwrap() error { return e.Err }

// DigestMismatchError describes streamed content that did not match its descriptor. It
// matches ErrDigestMismatch with errors.Is.
type DigestMismatchError struct {
	Expected     string // the announced digest
	Actual       string // the digest of the bytes actually read
	ExpectedSize int64  // -1 when no size was announced
	ActualSize   int64
}

func (e DigestMismatchError) Error() string {
	if e.ExpectedSize >= 0 && e.ExpectedSize != e.ActualSize {
		return fmt.Sprintf("digest mismatch: expected %s (%d bytes), got %s (%d bytes)",
			e.Expected, e.ExpectedSize, e.Actual, e.ActualSize)
	}
	return fmt.Sprintf("digest mismatch: expected %s, got %s", e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrDigestMismatch) true.
func (e DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }
