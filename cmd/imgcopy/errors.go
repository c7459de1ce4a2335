package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"io/fs"
	"net"
	"strings"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/integrity"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// hint returns advice for a person who hit err, or "".
func hint(err error) string {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalidCert      x509.CertificateInvalidError
		verifyErr        *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
		opErr            *net.OpError
	)
	switch {
	case errors.Is(err, types.ErrUnknownTransport):
		return ""
	case errors.Is(err, types.ErrUnauthorized):
		return "pass --src-creds/--dest-creds (or --creds) or run imgcopy login REGISTRY"
	case errors.Is(err, types.ErrDenied):
		return "the credentials were accepted but lack access to this repository"
	case errors.Is(err, fs.ErrNotExist):
		return "check the path"
	case errors.Is(err, types.ErrManifestNotFound):
		return "check the name, tag or digest (imgcopy list-tags REF lists the tags)"
	case errors.As(err, &unknownAuthority), errors.As(err, &verifyErr), errors.As(err, &invalidCert), errors.As(err, &hostname):
		return "TLS verification failed: put the registry's CA in a --src-cert-dir/--dest-cert-dir (or /etc/containers/certs.d/HOST/), or pass --src-tls-verify=false/--dest-tls-verify=false"
	case errors.As(err, &recordHeader):
		return "the registry does not speak TLS: pass --src-tls-verify=false/--dest-tls-verify=false to use plain HTTP"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "check the registry's host and port, and that it is reachable from here"
	case errors.Is(err, manifest.ErrConversionLoss):
		return "choose another --format, or a destination that stores this manifest type as is"
	}
	return ""
}

// reportError prints err as one line (with a hint when one applies; with the stack under
// --debug) and returns the exit code for it.
func reportError(w io.Writer, ctx context.Context, err error, debug bool) int {
	var ue usageError
	var verifyFailed *integrity.Error
	code := exitFailure
	switch {
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())):
		printf(w, "imgcopy: interrupted\n")
		return exitInterrupted
	case ctx.Err() != nil:
		code = exitInterrupted
	case errors.As(err, &ue) || errors.Is(err, types.ErrUnknownTransport):
		code = exitUsage
	case errors.As(err, &verifyFailed): // TODO(#15): subsumed by exit codes by error class
		code = types.ClassVerification.ExitCode()
	}
	msg := err.Error()
	if h := hint(err); h != "" {
		msg += " — " + h
	}
	printf(w, "imgcopy: %s\n", msg)
	if debug {
		printf(w, "details (--debug):\n%s\n", strings.TrimRight(errorWithStack(err), "\n"))
	}
	if code == exitUsage && !debug {
		printf(w, "Run 'imgcopy --help' for usage.\n")
	}
	return code
}

// errorWithStack formats err with %+v, which prints the pkg/errors stack.
func errorWithStack(err error) string {
	var b strings.Builder
	printf(&b, "%+v", err)
	return b.String()
}
