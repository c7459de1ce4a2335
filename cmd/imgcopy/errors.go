package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"

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
		problems         *integrity.Error
	)
	var wrongFormat *types.WrongFormatError
	var rejected types.ManifestTypeRejectedError
	if errors.As(err, &problems) {
		return "" // problems found in stored content: advice about names and paths misleads
	}
	if errors.As(err, &wrongFormat) {
		return "" // it says which reference reads the path
	}
	var several interface{ Unwrap() []error }
	if errors.As(err, &several) {
		return commonHint(several.Unwrap())
	}
	switch {
	case errors.Is(err, types.ErrUnknownTransport):
		return skopeoTransportHint(err.Error())
	case errors.Is(err, types.ErrNotFoundOrDenied):
		return "the registry does not say which: check the name, and if the repository is private pass --src-creds/--dest-creds (or --creds) or run imgcopy login REGISTRY"
	case errors.Is(err, types.ErrCredentialsRefused):
		return "the registry refused the user name and password given: check them (--src-creds/--dest-creds, --creds, the auth file, or imgcopy login REGISTRY again)"
	case errors.Is(err, types.ErrUnauthorized):
		return "pass --src-creds/--dest-creds (or --creds) or run imgcopy login REGISTRY"
	case errors.Is(err, types.ErrDenied):
		return "the credentials were accepted but lack access to this repository"
	case errors.Is(err, fs.ErrNotExist):
		return "check the path"
	case errors.Is(err, types.ErrRepositoryNotFound):
		return "check the registry and repository name"
	case errors.Is(err, types.ErrManifestNotFound):
		return "check the name, tag or digest (imgcopy list-tags REF lists the tags)"
	case errors.Is(err, types.ErrRateLimited):
		return "the registry throttles requests: wait before trying again, log in (anonymous pulls often get lower limits) or raise --retry-times/--retry-delay"
	case errors.Is(err, types.ErrSignatureInvalid):
		return "the manifest was changed after it was signed: do not trust this source"
	case errors.As(err, &hostname):
		return "the registry's certificate is not valid for the name used: use a name it lists, or have it reissued for this one; --src-tls-verify=false/--dest-tls-verify=false (--tls-verify=false) skips the check"
	case errors.As(err, &invalidCert) && invalidCert.Reason == x509.Expired:
		return "the registry's certificate has expired or is not valid yet: have it renewed (or check this machine's clock); --src-tls-verify=false/--dest-tls-verify=false (--tls-verify=false) skips the check"
	case errors.As(err, &unknownAuthority), errors.As(err, &verifyErr), errors.As(err, &invalidCert):
		return "TLS verification failed: put the registry's CA (a *.crt file) in a --src-cert-dir/--dest-cert-dir (--cert-dir for the other commands) or in /etc/containers/certs.d/HOST:PORT/, or pass --src-tls-verify=false/--dest-tls-verify=false (--tls-verify=false)"
	case errors.Is(err, types.ErrClientCertRefused):
		return "the registry wants a client certificate it accepts: put it and its key (NAME.cert, NAME.key) in a --src-cert-dir/--dest-cert-dir (--cert-dir for the other commands) or in /etc/containers/certs.d/HOST:PORT/"
	case errors.Is(err, types.ErrProxyRefused):
		return "check the proxy settings (HTTPS_PROXY, HTTP_PROXY): a registry the proxy must not carry goes in NO_PROXY"
	case errors.As(err, &recordHeader), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "the registry does not speak TLS: pass --src-tls-verify=false/--dest-tls-verify=false (--tls-verify=false for the other commands) to use plain HTTP"
	case errors.As(err, &opErr) && opErr.Op == "proxyconnect":
		return "the proxy could not be reached: check HTTPS_PROXY/HTTP_PROXY, or put the registry in NO_PROXY if it is to be reached directly"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "check the registry's host and port, and that it is reachable from here"
	case errors.Is(err, syscall.ENOSPC):
		return "the file system is full: free space there, or write the image (or --tmpdir) elsewhere"
	case errors.Is(err, syscall.EFBIG):
		return "the file is larger than the file system or a file-size limit (ulimit -f) allows"
	case errors.Is(err, manifest.ErrConversionLoss):
		return "choose another --format, or a destination that stores this manifest type as is"
	case errors.As(err, &rejected) && strings.HasPrefix(rejected.MIMEType, "application/vnd.oci."):
		return "the registry does not take this OCI type (older Quay and ECR refuse OCI indexes and artifacts): --format v2s2 converts images to Docker types; artifacts and referrers have no Docker form"
	}
	return ""
}

// commonHint returns the hint that every one of errs gets, or "": a failure of several images
// (a sync) gets no advice that fits only some of them.
func commonHint(errs []error) string {
	h := ""
	for i, err := range errs {
		eh := hint(err)
		if eh == "" || (i > 0 && eh != h) {
			return ""
		}
		h = eh
	}
	return h
}

// exitCodeHelp is the exit-code table of imgcopy --help (and of the README).
const exitCodeHelp = `Exit codes:
   0    success
   1    any other failure
   2    usage: bad flag or argument, unknown transport, malformed reference, a path read with
        another format's transport (the error names the right one), invalid auth file or
        certificate directory
   3    not found: repository, tag, manifest, blob or file
   4    authentication or authorization refused, including a registry that answers "not found or
        not authorized" for a repository that may not exist
   5    rate limited by the registry (429) after all retries
   6    verification failed: digest or size mismatch, schema1 signature that does not verify
   7    network or TLS failure, or registry unavailable (502, 503, 504), after all retries
   10   sync --detailed-exitcode only: no failure, and something was (--dry-run: would be)
        copied or pruned; 0 then means everything was up to date
   130  interrupted (Ctrl-C or SIGTERM); nothing half-written is left behind`

// errorClass returns the class of err, the failure of a command: types.Classify, except that
// any failure once the user interrupted the command (ctx cancelled by Ctrl-C or SIGTERM) is
// an interruption.
func errorClass(ctx context.Context, err error) types.ErrorClass {
	if ctx.Err() != nil {
		return types.ClassInterrupted
	}
	return types.Classify(err)
}

// exitCode maps the result of a command onto the process exit status: 0 for nil, else the
// exit code of the error's class (see exitCodeHelp). Every command exits through it (run
// calls it, through reportError); a command that reports failures itself, e.g. one that goes
// on after one image of many failed, uses it too so that the codes mean the same everywhere.
func exitCode(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	return errorClass(ctx, err).ExitCode()
}

// reportError prints err as one line (with a hint when one applies; with the stack under
// --debug) and returns the exit code for it.
func reportError(w io.Writer, ctx context.Context, err error, debug bool) int {
	class := errorClass(ctx, err)
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) {
		printf(w, "imgcopy: interrupted\n")
		return exitCode(ctx, err)
	}
	msg := err.Error()
	if h := hint(err); h != "" && strings.Contains(msg, "\n") {
		msg += "\n" + h // after a list of failures, on a line of its own
	} else if h != "" {
		msg += " — " + h
	}
	printf(w, "imgcopy: %s\n", msg)
	if debug {
		printf(w, "details (--debug):\n%s\n", strings.TrimRight(errorWithStack(err), "\n"))
	}
	// Point to --help for a bad command line or option, not for a broken auth file or
	// certificate directory (also ClassUsage).
	if class == types.ClassUsage && (errors.Is(err, types.ErrUsage) || errors.Is(err, types.ErrUnknownTransport)) && !debug {
		printf(w, "Run 'imgcopy --help' for usage.\n")
	}
	return exitCode(ctx, err)
}

// errorWithStack formats err with %+v, which prints the pkg/errors stack.
func errorWithStack(err error) string {
	var b strings.Builder
	printf(&b, "%+v", err)
	return b.String()
}
