package types

import (
	"time"

	"github.com/distribution/reference"
)

// OptionalBool is a tri-state boolean: undefined, true or false.
type OptionalBool byte

const (
	// OptionalBoolUndefined means the caller did not say; the transport picks its default.
	OptionalBoolUndefined OptionalBool = iota
	// OptionalBoolTrue is an explicit true.
	OptionalBoolTrue
	// OptionalBoolFalse is an explicit false.
	OptionalBoolFalse
)

// NewOptionalBool converts a bool into an explicit OptionalBool.
func NewOptionalBool(b bool) OptionalBool {
	if b {
		return OptionalBoolTrue
	}
	return OptionalBoolFalse
}

// DockerAuthConfig holds explicit registry credentials.
type DockerAuthConfig struct {
	Username string
	Password string
	// IdentityToken is an OAuth2 refresh token (the "identitytoken" of auth files).
	IdentityToken string
}

// SystemContext carries the per-side environment of a copy: credentials, TLS, temp dirs and
// platform choices. A nil *SystemContext means all defaults. Transports only read it.
type SystemContext struct {
	// AuthFilePath overrides the auth file search (--authfile); "" uses the default search order.
	AuthFilePath string
	// DockerAuthConfig, when non-nil, is used instead of any auth file or credential helper.
	DockerAuthConfig *DockerAuthConfig
	// DockerBearerRegistryToken is a bearer token sent as is (--registry-token).
	DockerBearerRegistryToken string
	// NoCreds forces anonymous access (--src-no-creds).
	NoCreds bool
	// CertDir overrides the certs.d search for the registry's host (--cert-dir).
	CertDir string
	// InsecureSkipTLSVerify: OptionalBoolTrue disables certificate checks and allows plain
	// HTTP (--tls-verify=false).
	InsecureSkipTLSVerify OptionalBool
	// UserAgent overrides the HTTP User-Agent.
	UserAgent string
	// RetryTimes bounds retries of one registry request; nil means the default (3).
	RetryTimes *int
	// RetryDelay is the first back-off delay; 0 means the default with exponential growth.
	RetryDelay time.Duration
	// ReadTimeout is how long a registry transfer may go without receiving (or, uploading,
	// sending) a byte before it counts as stalled and is retried; 0 means 30 s, negative never.
	ReadTimeout time.Duration
	// RequestLimiter, when set, is asked before each registry request, so that copies running
	// side by side (a sync) share one request budget per registry.
	RequestLimiter RequestLimiter

	// OSChoice, ArchitectureChoice and VariantChoice override the running platform when
	// choosing an image from a multi-platform index (--override-os/-arch/-variant).
	OSChoice           string
	ArchitectureChoice string
	VariantChoice      string

	// Resume, when set, keeps interrupted transfers so that a later run continues them
	// (see ResumeOptions); nil turns resuming off.
	Resume *ResumeOptions
	// UploadChunkSize, when > 0, uploads blobs of known size to a registry in chunks of this
	// many bytes (one PATCH each), recording the upload's progress after every chunk; 0 sends
	// each blob in one request.
	UploadChunkSize int64

	// BigFilesTemporaryDir is where large temporary files (spooled layers, decompressed
	// archives) are written; "" means the destination's directory or os.TempDir.
	BigFilesTemporaryDir string

	// DockerArchiveAdditionalTags are extra RepoTags written by a docker-archive destination.
	DockerArchiveAdditionalTags []reference.NamedTagged
	// DockerArchiveClassic writes the classic uncompressed docker-archive (no OCI layout part)
	// for old consumers.
	DockerArchiveClassic bool
	// ArchiveCompression compresses a written docker-archive or oci-archive as a whole:
	// "gzip", "zstd", or "none"; "" decides by the file name (.gz/.tgz, .zst/.tzst).
	// Reading detects compression by content and needs no setting.
	ArchiveCompression string
	// NoFsync makes local destinations (dir:, oci:, docker-archive:, oci-archive:) skip every
	// fsync (--fsync=false), as crane does: faster, but a crash or power loss may leave a
	// destination that looks complete and is not. For scratch output.
	NoFsync bool
}
