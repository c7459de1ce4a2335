// Package docker implements the "docker" transport: images in a registry speaking the
// distribution API (docker://HOST[:PORT]/REPO[:TAG][@DIGEST]), with Basic and Bearer
// authentication, TLS per certs.d, retries with back-off, resumed blob downloads and
// cross-repository blob mounts.
//
// # Getting started
//
// Parse "docker://REFERENCE" with a transport list (transports/alltransports), or call
// NewReference with a parsed github.com/distribution/reference name. What the registry
// client does comes from the types.SystemContext given when an image is opened: credentials
// (DockerAuthConfig, else the auth file and credential helpers, as podman and skopeo find
// them), certificates (CertDir, else /etc/containers/certs.d/HOST), plain HTTP and
// unverified TLS (InsecureSkipTLSVerify; a loopback host, localhost or 127.0.0.0/8 or ::1,
// may answer over plain HTTP without it, as with docker), retries (RetryTimes, RetryDelay).
// CheckAuth checks credentials against a registry without touching an image, as `imgcopy
// login` does.
//
// The clients of a process share one HTTP connection pool per registry host and TLS
// setting, so that copies reuse connections; CloseIdleConnections releases the idle ones
// (they are otherwise closed after 90 s), for a program that wants no connection or
// goroutine left once its copies returned.
//
// References also implement types.TagLister and types.ImageDeleter (deleting a manifest by
// digest, which removes every tag on it); destinations implement types.ManifestChecker (a
// HEAD of the manifest), types.ReferrersLister and types.RelatedDestination; sources
// types.ReferrersLister and types.RelatedSource. Registry errors map onto the sentinels of
// the types package (404 and *_UNKNOWN to the not-found ones, 401/403 to ErrUnauthorized or
// ErrDenied, 429 to ErrRateLimited), so callers never see HTTP status codes.
//
// # Stability
//
// Transport, NewReference, CheckAuth, CloseIdleConnections, the reference syntax (skopeo's) and the SystemContext
// fields it reads are stable. Log output, retry timing and which requests it sends (HEAD or
// GET, mount attempts, chunking) may change.
package docker
