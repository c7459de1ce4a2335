package types

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pkg/errors"
)

// The sentinels callers test with errors.Is, all in one place, grouped by the class Classify
// gives them (see sentinelClasses). Packages that defined some of them first keep their old
// names as aliases (manifest.ErrInvalidManifest is types.ErrInvalidManifest).
var (
	// ErrBlobNotFound is returned (wrapped) when a blob does not exist at a source or destination.
	ErrBlobNotFound = errors.New("blob not found")
	// ErrManifestNotFound is returned (wrapped) when an image or manifest instance does not exist.
	ErrManifestNotFound = errors.New("manifest not found")
	// ErrRepositoryNotFound is returned (wrapped) when a registry says a repository does not
	// exist (NAME_UNKNOWN, or 404 when listing its tags).
	ErrRepositoryNotFound = errors.New("repository not found")

	// ErrUnauthorized is returned (wrapped) when a registry requires authentication that was
	// not provided or was refused.
	ErrUnauthorized = errors.New("authentication required")
	// ErrCredentialsRefused is returned (wrapped, together with ErrUnauthorized) when the
	// registry or its token server answered 401 to a request that carried a user name and
	// password: the credentials given are wrong, rather than missing.
	ErrCredentialsRefused = errors.New("credentials refused")
	// ErrDenied is returned (wrapped) when credentials were accepted but the access is forbidden.
	ErrDenied = errors.New("access denied")
	// ErrNotFoundOrDenied is returned (wrapped, together with ErrUnauthorized or ErrDenied)
	// when a registry refuses to read a repository that may just as well not exist: many
	// registries answer 401/403 for a missing repository so as not to reveal which names exist.
	ErrNotFoundOrDenied = errors.New("not found or not authorized")

	// ErrDigestMismatch is returned (wrapped, naming the blob and both digests) when streamed
	// content does not match the digest or size it was announced with.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSignatureInvalid is returned (wrapped) when a signed manifest's signature does not
	// verify, or signs something other than the manifest it comes with.
	ErrSignatureInvalid = errors.New("invalid signature")

	// ErrRateLimited is returned (wrapped) when a registry kept answering 429 Too Many Requests
	// (or TOOMANYREQUESTS) after every retry.
	ErrRateLimited = errors.New("rate limited by the registry")

	// ErrNetwork is returned (wrapped) for transfer failures that are the network's fault and
	// that the standard library does not already describe as a net.Error, e.g. a transfer that
	// stalled for longer than the read timeout, a body cut short after every resume, or a
	// registry that still answered 502, 503 or 504 (down, or a gateway that cannot reach it)
	// after every retry.
	ErrNetwork = errors.New("network failure")
	// ErrProxyRefused is returned (wrapped, naming the proxy without its credentials) when the
	// HTTP proxy from HTTPS_PROXY/HTTP_PROXY refuses to connect to a registry.
	ErrProxyRefused = errors.New("refused by the proxy")
	// ErrClientCertRefused is matched by a TLS handshake the registry ended with an alert about
	// the client certificate: it wants one, or does not accept the one sent.
	ErrClientCertRefused = errors.New("client certificate refused by the registry")

	// ErrUsage marks a mistake by the caller: a malformed reference, a bad option value, an
	// invalid config file. Wrap it, or return a UsageError, so Classify gives ClassUsage.
	ErrUsage = errors.New("invalid usage")
	// ErrUnknownTransport is returned (wrapped, listing the known transports) when an image name
	// has no known "transport:" prefix.
	ErrUnknownTransport = errors.New("unknown transport")
	// ErrInvalidAuthFile is returned (wrapped) when a credentials file cannot be parsed.
	ErrInvalidAuthFile = errors.New("invalid auth file")
	// ErrInvalidAuthEntry is returned (wrapped) when one entry of a credentials file is malformed.
	ErrInvalidAuthEntry = errors.New("invalid auth entry")
	// ErrInvalidCertificate is returned (wrapped) for an unreadable CA or client certificate
	// in a certificate directory.
	ErrInvalidCertificate = errors.New("invalid certificate")
	// ErrUnpairedClientCert is returned (wrapped) when a certificate directory holds a client
	// certificate without its key or the other way round.
	ErrUnpairedClientCert = errors.New("client certificate without matching key")

	// ErrInvalidManifest is returned (wrapped, saying what is wrong) for a manifest or index
	// that does not follow its schema.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrUnsupportedMIMEType is returned (wrapped) for a manifest MIME type we do not handle.
	ErrUnsupportedMIMEType = errors.New("unsupported manifest MIME type")
	// ErrConversionLoss is returned (wrapped) when converting a manifest would drop
	// information the target format cannot carry.
	ErrConversionLoss = errors.New("manifest conversion would lose information")
	// ErrInvalidLayout is returned (wrapped) for a directory or archive that is not a valid
	// OCI image layout.
	ErrInvalidLayout = errors.New("invalid OCI layout")
	// ErrInvalidArchive is returned (wrapped) for a tarball that is not a valid docker archive.
	ErrInvalidArchive = errors.New("invalid docker archive")
	// ErrNotImageDir is returned when a dir: destination exists, is not empty and does not
	// look like an image directory: it is not overwritten.
	ErrNotImageDir = errors.New("not a dir: image directory, refusing to overwrite it")
	// ErrTooLarge is returned (wrapped) when metadata (a manifest, config, index file, token
	// response) exceeds its size cap.
	ErrTooLarge = errors.New("input exceeds size limit")
	// ErrUnsafePath is returned (wrapped, naming the member) for an archive member with an
	// absolute or escaping name or link.
	ErrUnsafePath = errors.New("unsafe path in archive")
	// ErrDuplicateEntry is returned (wrapped) when two members of an archive have the same name.
	ErrDuplicateEntry = errors.New("duplicate entry in archive")
	// ErrNotContainerImage is returned (wrapped in a UsageError) when a destination that holds
	// only container images (a docker-archive, for `docker load`) is given an artifact: a
	// signature, an SBOM, a Helm chart.
	ErrNotContainerImage = errors.New("not a container image")
	// ErrNotLoggedIn is returned (wrapped) when logging out of a registry with no stored
	// credentials.
	ErrNotLoggedIn = errors.New("not logged in")
)

// sentinelClasses gives each sentinel its class; Classify checks them in this order. Malformed
// input (an invalid manifest, layout or archive, an unsafe archive path, an oversized
// metadata file) is ClassOther, not ClassVerification: the content is what its digest says
// it is, it just breaks its format, so fetching it again or from elsewhere does not help.
var sentinelClasses = []struct {
	err   error
	class ErrorClass
}{
	{ErrUsage, ClassUsage},
	{ErrUnknownTransport, ClassUsage},
	{ErrInvalidAuthFile, ClassUsage},
	{ErrInvalidAuthEntry, ClassUsage},
	{ErrInvalidCertificate, ClassUsage},
	{ErrUnpairedClientCert, ClassUsage},
	{ErrDigestMismatch, ClassVerification},
	{ErrResumeFailed, ClassVerification},
	{ErrSignatureInvalid, ClassVerification},
	{ErrNotFoundOrDenied, ClassAuth},
	{ErrCredentialsRefused, ClassAuth},
	{ErrUnauthorized, ClassAuth},
	{ErrDenied, ClassAuth},
	{ErrRateLimited, ClassRateLimited},
	{ErrManifestNotFound, ClassNotFound},
	{ErrBlobNotFound, ClassNotFound},
	{ErrRepositoryNotFound, ClassNotFound},
	{fs.ErrNotExist, ClassNotFound},
	{ErrProxyRefused, ClassNetwork},
	{ErrClientCertRefused, ClassNetwork},
	{ErrNetwork, ClassNetwork},
	{context.DeadlineExceeded, ClassNetwork},
	{ErrInvalidManifest, ClassOther},
	{ErrUnsupportedMIMEType, ClassOther},
	{ErrConversionLoss, ClassOther},
	{ErrInvalidLayout, ClassOther},
	{ErrInvalidArchive, ClassOther},
	{ErrNotImageDir, ClassOther},
	{ErrTooLarge, ClassOther},
	{ErrUnsafePath, ClassOther},
	{ErrDuplicateEntry, ClassOther},
	{ErrNotLoggedIn, ClassOther},
}

// RequireReferences returns a UsageError naming what (e.g. "inspecting an image") when one of
// refs is a nil interface, for library entry points that would otherwise fail with a nil
// pointer dereference.
func RequireReferences(what string, refs ...ImageReference) error {
	for _, r := range refs {
		if r == nil {
			return UsageError{Err: errors.New(what + " needs an image reference, got nil")}
		}
	}
	return nil
}

// UsageError marks Err as a mistake by the caller (a malformed reference, a bad option
// value): Classify gives ClassUsage and errors.Is(err, ErrUsage) holds, while the message is
// Err's alone.
type UsageError struct{ Err error }

var _ ClassedError = UsageError{}

// Error implements error.
func (e UsageError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e UsageError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUsage) true.
func (e UsageError) Is(target error) bool { return target == ErrUsage }

// ErrorClass implements ClassedError.
func (e UsageError) ErrorClass() ErrorClass { return ClassUsage }

// AddCloseError adds closeErr, the failure of closing something after the work that returned
// err, to err, without hiding either from errors.Is/As: the result is err when closeErr is
// nil, closeErr wrapped with what ("closing source dir:/x") when err is nil, and otherwise
// err with closeErr attached, whose class stays err's.
func AddCloseError(err, closeErr error, what string) error {
	if closeErr == nil {
		return err
	}
	closeErr = errors.Wrap(closeErr, what)
	if err == nil {
		return closeErr
	}
	return &closeError{err: err, closeErr: closeErr}
}

// closeError keeps the first failure and adds a later Close failure to it.
type closeError struct {
	err      error
	closeErr error
}

func (e *closeError) Error() string {
	return e.err.Error() + " (also " + e.closeErr.Error() + ")"
}

// Format prints the first failure's stack with %+v (the CLI's --debug).
func (e *closeError) Format(s fmt.State, verb rune) {
	if verb == 'v' && s.Flag('+') {
		fmt.Fprintf(s, "%+v\nalso %+v", e.err, e.closeErr)
		return
	}
	_, _ = fmt.Fprint(s, e.Error())
}

// Unwrap returns both errors, so errors.Is and errors.As match either.
func (e *closeError) Unwrap() []error { return []error{e.err, e.closeErr} }

// ManifestTypeRejectedError is returned by ImageDestination.PutManifest when the destination
// refuses this manifest MIME type but might accept another one; the copy engine then tries
// the next candidate type.
type ManifestTypeRejectedError struct {
	MIMEType string
	Err      error
}

// Error implements error.
func (e ManifestTypeRejectedError) Error() string {
	return fmt.Sprintf("manifest type %s rejected: %v", e.MIMEType, e.Err)
}

// Unwrap returns the underlying cause.
func (e ManifestTypeRejectedError) Unwrap() error { return e.Err }

// WrongFormatError is returned when a path holds images in another transport's format than
// the reference names (an OCI layout read as dir: or docker-archive:, a docker save archive
// read as oci-archive:, a dir: image read as oci:, a tar file named with oci:, a layout
// directory with oci-archive:): a mistake in the reference, class usage (exit 2), not damage,
// with the reference that reads (or, Writing, writes to) the path. It matches Err (the named
// transport's finding: ErrInvalidLayout, ErrInvalidArchive, ErrManifestNotFound) with
// errors.Is.
type WrongFormatError struct {
	Err     error  // what the named transport found missing
	Holds   string // what the path holds, e.g. "an OCI image layout"
	Use     string // the reference that reads it, e.g. "oci-archive:/tmp/x.tar"
	Writing bool   // the path was named as a destination
}

// Error implements error.
func (e *WrongFormatError) Error() string {
	if e.Writing {
		return fmt.Sprintf("%v: it holds %s: write to it with %s", e.Err, e.Holds, e.Use)
	}
	return fmt.Sprintf("%v: it holds %s: read it as %s", e.Err, e.Holds, e.Use)
}

// Unwrap returns Err.
func (e *WrongFormatError) Unwrap() error { return e.Err }

// ErrorClass implements ClassedError: ClassUsage.
func (e *WrongFormatError) ErrorClass() ErrorClass { return ClassUsage }

// DigestMismatchError describes streamed content that did not match its descriptor. It
// matches ErrDigestMismatch with errors.Is.
type DigestMismatchError struct {
	Expected     string // the announced digest
	Actual       string // the digest of the bytes actually read
	ExpectedSize int64  // -1 when no size was announced
	ActualSize   int64
}

// Error implements error.
func (e DigestMismatchError) Error() string {
	if e.ExpectedSize >= 0 && e.ExpectedSize != e.ActualSize {
		return fmt.Sprintf("digest mismatch: expected %s (%d bytes), got %s (%d bytes)",
			e.Expected, e.ExpectedSize, e.Actual, e.ActualSize)
	}
	return fmt.Sprintf("digest mismatch: expected %s, got %s", e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrDigestMismatch) true.
func (e DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }
