package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/integrity"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

type fakeTransport struct{ name string }

var _ types.ImageTransport = fakeTransport{}

func (f fakeTransport) Name() string { return f.name }
func (f fakeTransport) ParseReference(s string) (types.ImageReference, error) {
	if s == "" || strings.Contains(s, "!") {
		return nil, errors.Errorf("invalid reference %q", s)
	}
	return fakeRef{t: f, s: s}, nil
}

type fakeRef struct {
	t fakeTransport
	s string
}

var _ types.ImageReference = fakeRef{}

func (r fakeRef) Transport() types.ImageTransport  { return r.t }
func (r fakeRef) StringWithinTransport() string    { return r.s }
func (r fakeRef) DockerReference() reference.Named { return nil }
func (r fakeRef) NewImageSource(context.Context, *types.SystemContext) (types.ImageSource, error) {
	return nil, errors.New("not implemented")
}
func (r fakeRef) NewImageDestination(context.Context, *types.SystemContext) (types.ImageDestination, error) {
	return nil, errors.New("not implemented")
}

const testDigest = digest.Digest("sha256:82d139ada46f01edb1ffc3b07ffc5d5dfb962ed9980df00a9fcbb366008725db")

// harness runs the CLI with fake transports and a fake copy that records its options.
type harness struct {
	env            *env
	stdout, stderr bytes.Buffer
	opts           *copier.Options
	src, dest      types.ImageReference
	authChecked    *types.SystemContext // what login checked
	authErr        error                // what the credential check returns
	copyErr        error
	events         []copier.ProgressEvent
}

func newHarness(t *testing.T) *harness {
	h := &harness{}
	l, err := types.NewTransportList(fakeTransport{"dir"}, fakeTransport{"oci"}, fakeTransport{"docker"}, fakeTransport{"oci-archive"})
	if err != nil {
		t.Fatal(err)
	}
	h.env = &env{
		transports: l,
		copyImage: func(ctx context.Context, dest, src types.ImageReference, opts *copier.Options) (*copier.Result, error) {
			h.opts, h.src, h.dest = opts, src, dest
			for _, ev := range h.events {
				opts.Progress(ev)
			}
			if h.copyErr != nil {
				return nil, h.copyErr
			}
			return &copier.Result{ManifestDigest: testDigest, MIMEType: imgspecv1.MediaTypeImageManifest, BlobsCopied: 2, BytesCopied: 1234}, nil
		},
		openCache: func() types.BlobInfoCache { return nil },
		checkAuth: func(ctx context.Context, sys *types.SystemContext, registry string) error {
			h.authChecked = sys
			return h.authErr
		},
		stdin:      strings.NewReader(""),
		stdout:     &h.stdout,
		stderr:     &h.stderr,
		isTerminal: func(any) bool { return false },
	}
	return h
}

func (h *harness) run(args ...string) int {
	return run(context.Background(), h.env, append([]string{"imgcopy"}, args...))
}

func intPtr(n int) *int { return &n }

func TestCopyFlagsMapToOptions(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, o *copier.Options)
	}{
		{name: "defaults", args: []string{"dir:/a", "oci:/b:v1"}, check: func(t *testing.T, o *copier.Options) {
			if o.ForceManifestMIMEType != "" || o.MultiArch != copier.MultiArchDefault || o.PreserveDigests || o.SourceCtx.InsecureSkipTLSVerify != types.OptionalBoolUndefined {
				t.Errorf("unexpected non-default options %+v", o)
			}
		}},
		{name: "flags after the arguments, skopeo style", args: []string{"--debug", "copy", "dir:/a", "--all", "oci:/b", "--format=oci", "--retry-times", "5", "--log-level", "info"}, check: func(t *testing.T, o *copier.Options) {
			if o.MultiArch != copier.MultiArchAll || o.ForceManifestMIMEType != imgspecv1.MediaTypeImageManifest || o.SourceCtx.RetryTimes == nil || *o.SourceCtx.RetryTimes != 5 {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "copy flags before the command word", args: []string{"--all", "--format", "oci", "--debug", "--no-resume", "copy", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if o.MultiArch != copier.MultiArchAll || o.ForceManifestMIMEType != imgspecv1.MediaTypeImageManifest || o.SourceCtx.Resume != nil {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "copy command", args: []string{"copy", "--format", "oci", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if o.ForceManifestMIMEType != imgspecv1.MediaTypeImageManifest {
				t.Errorf("format: %q", o.ForceManifestMIMEType)
			}
		}},
		{name: "v2s2 all preserve", args: []string{"--format", "v2s2", "--all", "--preserve-digests", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if o.ForceManifestMIMEType != manifest.DockerV2Schema2MediaType || o.MultiArch != copier.MultiArchAll || !o.PreserveDigests {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "multi-arch platforms", args: []string{"copy", "--multi-arch", "index-only", "--platform", "linux/arm64/v8", "--platform", "linux/amd64", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if o.MultiArch != copier.MultiArchIndexOnly || len(o.Platforms) != 2 || o.Platforms[0].Architecture != "arm64" || o.Platforms[0].Variant != "v8" || o.Platforms[1].Architecture != "amd64" {
				t.Errorf("got %v %+v", o.MultiArch, o.Platforms)
			}
		}},
		{name: "compression", args: []string{"--dest-compress-format", "zstd", "--dest-compress-level", "3", "--image-parallel-copies", "2", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if o.DestinationCompression != "zstd" || o.DestinationCompressionLevel == nil || *o.DestinationCompressionLevel != 3 || o.ImageParallelCopies != 2 {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "forced compression", args: []string{"--dest-compress-format", "gzip", "--force-compress-format", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if o.DestinationCompression != "gzip" {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "decompress", args: []string{"--dest-decompress", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if !o.DestinationDecompress || o.DestinationCompressionLevel != nil {
				t.Errorf("got %+v", o)
			}
		}},
		{name: "credentials and tls", args: []string{
			"--src-creds", "alice:s3cret:x", "--dest-registry-token", "tok", "--src-tls-verify=false", "--dest-tls-verify=true",
			"--src-cert-dir", "/certs", "--authfile", "/auth.json", "--dest-authfile", "/dest.json", "--dest-no-creds",
			"dir:/a", "oci:/b",
		}, check: func(t *testing.T, o *copier.Options) {
			s, d := o.SourceCtx, o.DestinationCtx
			if s.DockerAuthConfig == nil || s.DockerAuthConfig.Username != "alice" || s.DockerAuthConfig.Password != "s3cret:x" {
				t.Errorf("src creds %+v", s.DockerAuthConfig)
			}
			if d.DockerBearerRegistryToken != "tok" || !d.NoCreds || d.DockerAuthConfig != nil {
				t.Errorf("dest %+v", d)
			}
			if s.InsecureSkipTLSVerify != types.OptionalBoolTrue || d.InsecureSkipTLSVerify != types.OptionalBoolFalse {
				t.Errorf("tls verify src %v dest %v", s.InsecureSkipTLSVerify, d.InsecureSkipTLSVerify)
			}
			if s.CertDir != "/certs" || d.CertDir != "" || s.AuthFilePath != "/auth.json" || d.AuthFilePath != "/dest.json" {
				t.Errorf("paths src %+v dest %+v", s, d)
			}
		}},
		{name: "globals on both sides", args: []string{
			"--override-os", "linux", "--override-arch", "arm", "--override-variant", "v7", "--tmpdir", "/big",
			"--retry-times", "4", "--retry-delay", "2s", "dir:/a", "oci:/b",
		}, check: func(t *testing.T, o *copier.Options) {
			for _, sys := range []*types.SystemContext{o.SourceCtx, o.DestinationCtx} {
				if sys.OSChoice != "linux" || sys.ArchitectureChoice != "arm" || sys.VariantChoice != "v7" || sys.BigFilesTemporaryDir != "/big" ||
					sys.RetryTimes == nil || *sys.RetryTimes != 4 || sys.RetryDelay.String() != "2s" {
					t.Errorf("got %+v", sys)
				}
			}
		}},
		{name: "archive compression", args: []string{"--archive-compress", "zstd", "dir:/a", "oci-archive:/b"}, check: func(t *testing.T, o *copier.Options) {
			if o.DestinationCtx.ArchiveCompression != "zstd" || o.SourceCtx.ArchiveCompression != "" {
				t.Errorf("got dest %q, src %q", o.DestinationCtx.ArchiveCompression, o.SourceCtx.ArchiveCompression)
			}
		}},
		{name: "fsync by default", args: []string{"dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if o.DestinationCtx.NoFsync {
				t.Error("NoFsync set without --fsync=false")
			}
		}},
		{name: "fsync off", args: []string{"--fsync=false", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			if !o.DestinationCtx.NoFsync || o.SourceCtx.NoFsync {
				t.Errorf("got dest %v, src %v", o.DestinationCtx.NoFsync, o.SourceCtx.NoFsync)
			}
		}},
		{name: "additional tags", args: []string{"--additional-tag", "hello:v1", "--additional-tag", "quay.io/x/y:z", "dir:/a", "oci:/b"}, check: func(t *testing.T, o *copier.Options) {
			tags := o.DestinationCtx.DockerArchiveAdditionalTags
			if len(tags) != 2 || tags[0].String() != "docker.io/library/hello:v1" || tags[1].String() != "quay.io/x/y:z" {
				t.Errorf("got %v", tags)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if code := h.run(tc.args...); code != exitOK {
				t.Fatalf("exit %d, stderr %s", code, h.stderr.String())
			}
			if types.ImageName(h.src) != "dir:/a" {
				t.Errorf("src %s", types.ImageName(h.src))
			}
			tc.check(t, h.opts)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"one argument", []string{"dir:/a"}, "expected SRC and DST, got 1 argument(s)"},
		{"three arguments", []string{"copy", "dir:/a", "dir:/b", "dir:/c"}, "expected SRC and DST, got 3"},
		{"unknown flag", []string{"--nope", "dir:/a", "dir:/b"}, "flag provided but not defined: -nope"},
		{"skopeo's --src-username", []string{"copy", "--src-username", "bob", "dir:/a", "dir:/b"}, "--src-username is a skopeo flag imgcopy does not have: use --src-creds"},
		{"skopeo's --remove-signatures with --referrers", []string{"sync", "--remove-signatures", "--referrers", "dir:/a", "dir:/b"}, "--remove-signatures contradicts --referrers and --digest-tags"},
		{"skopeo's --remove-signatures with --digest-tags", []string{"--remove-signatures", "--digest-tags", "dir:/a", "dir:/b"}, "--remove-signatures contradicts --referrers and --digest-tags"},
		{"skopeo's --sign-by after the arguments", []string{"sync", "dir:/a", "dir:/b", "--sign-by", "KEY"}, "imgcopy does not sign images"},
		{"flag after args still checked", []string{"copy", "dir:/a", "dir:/b", "--format", "v2s1"}, `--format "v2s1": want oci or v2s2`},
		{"unknown transport", []string{"foo:/a", "dir:/b"}, "known transports: dir, docker, oci"},
		{"no transport", []string{"busybox", "dir:/b"}, "expected TRANSPORT:REFERENCE"},
		{"bad reference", []string{"dir:/a", "oci:!"}, `invalid image name "oci:!"`},
		{"bad format", []string{"--format", "v2s1", "dir:/a", "dir:/b"}, `--format "v2s1": want oci or v2s2`},
		{"all vs multi-arch", []string{"--all", "--multi-arch", "system", "dir:/a", "dir:/b"}, "contradict"},
		{"bad multi-arch", []string{"--multi-arch", "some", "dir:/a", "dir:/b"}, "want all, system or index-only"},
		{"bad platform", []string{"--platform", "linux", "dir:/a", "dir:/b"}, "--platform"},
		{"bad compression", []string{"--dest-compress-format", "xz", "dir:/a", "dir:/b"}, "want gzip or zstd"},
		{"forced compression without a format", []string{"--force-compress-format", "dir:/a", "dir:/b"}, "needs --dest-compress-format"},
		{"decompress and compress", []string{"--dest-decompress", "--dest-compress-format", "gzip", "dir:/a", "dir:/b"}, "cannot be combined"},
		{"archive compression of a layout", []string{"--archive-compress", "gzip", "dir:/a", "oci:/b"}, "--archive-compress gzip: the oci transport writes no archive"},
		{"bad progress", []string{"--progress", "fancy", "dir:/a", "dir:/b"}, "want auto, bars, plain or json"},
		{"creds without password on a pipe", []string{"--src-creds", "alice", "dir:/a", "dir:/b"}, "--src-creds has no password"},
		{"creds and no-creds", []string{"--src-creds", "a:b", "--src-no-creds", "dir:/a", "dir:/b"}, "cannot be used together"},
		{"bad additional tag", []string{"--additional-tag", "UPPER", "dir:/a", "dir:/b"}, "--additional-tag"},
		{"bad log level", []string{"--log-level", "loud", "dir:/a", "dir:/b"}, "invalid --log-level"},
		{"inspect without ref", []string{"inspect"}, "expected REF, got 0"},
		{"inspect format and raw", []string{"inspect", "--raw", "--format", "{{.Digest}}", "dir:/a"}, "cannot be combined"},
		{"inspect bad template", []string{"inspect", "--format", "{{.Digest", "dir:/a"}, "--format"},
		{"list-tags unsupported", []string{"list-tags", "dir:/a"}, "the dir transport cannot list tags"},
		{"delete unsupported", []string{"delete", "dir:/a"}, "the dir transport cannot delete images"},
		{"manifest-digest args", []string{"manifest-digest"}, "expected FILE"},
		{"login password-stdin without user", []string{"login", "--password-stdin", "host"}, "needs --username"},
		{"login without user on a pipe", []string{"login", "host"}, "--username is required"},
		{"version with args", []string{"version", "x"}, "expected no arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if code := h.run(tc.args...); code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr %s", code, exitUsage, h.stderr.String())
			}
			if !strings.Contains(h.stderr.String(), tc.want) {
				t.Errorf("stderr %q does not contain %q", h.stderr.String(), tc.want)
			}
			if h.opts != nil {
				t.Errorf("copy was called")
			}
		})
	}
}

func TestCopyErrorsAreOneActionableLine(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		args     []string
		code     int
		want     []string
		wantNone string
	}{
		{name: "unauthorized", err: errors.Wrap(errors.Wrap(types.ErrUnauthorized, "reading manifest of docker://127.0.0.1:5000/app:1"), "copying"),
			code: 4, want: []string{"authentication required", "docker://127.0.0.1:5000/app:1", "--src-creds/--dest-creds", "imgcopy login"}, wantNone: ".go:"},
		{name: "missing image", err: errors.Wrap(types.ErrManifestNotFound, "reading manifest of oci:/x:nope"),
			code: 3, want: []string{"manifest not found", "list-tags"}},
		{name: "digest mismatch", err: errors.Wrap(types.DigestMismatchError{Expected: "sha256:aa", Actual: "sha256:bb", ExpectedSize: -1}, "copying blob sha256:aa from docker://h/r"),
			code: 6, want: []string{"copying blob sha256:aa from docker://h/r: digest mismatch: expected sha256:aa, got sha256:bb"}},
		{name: "unknown CA", err: errors.Wrap(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "pinging registry h:5000"),
			code: 7, want: []string{"pinging registry h:5000", "--src-cert-dir/--dest-cert-dir", "tls-verify=false"}},
		{name: "certificate for another name", err: errors.Wrap(&tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"other"}}, Host: "h"}}, "pinging registry h:5000"),
			code: 7, want: []string{"not valid for the name used", "tls-verify=false"}, wantNone: "registry's CA"},
		{name: "expired certificate", err: errors.Wrap(&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, "pinging registry h:5000"),
			code: 7, want: []string{"expired", "renewed"}, wantNone: "registry's CA"},
		{name: "client certificate refused", err: errors.Wrap(errors.Wrap(types.ErrClientCertRefused, "Get https://h:5000/v2/: remote error: tls: certificate required"), "pinging registry h:5000"),
			code: 7, want: []string{"certificate required", "client certificate", "NAME.cert, NAME.key", "certs.d/HOST:PORT/"}},
		{name: "proxy refused", err: errors.Wrap(errors.Wrap(types.ErrProxyRefused, "proxy http://p:3128 refused to connect to h:5000: 403 Forbidden"), "pinging registry h:5000"),
			code: 7, want: []string{"proxy http://p:3128", "NO_PROXY"}},
		{name: "proxy unreachable", err: errors.Wrap(&net.OpError{Op: "proxyconnect", Net: "tcp", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, "pinging registry h:5000"),
			code: 7, want: []string{"proxyconnect", "proxy could not be reached", "NO_PROXY"}, wantNone: "registry's host and port"},
		{name: "connection refused", err: errors.Wrap(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "pinging registry h:1"),
			code: 7, want: []string{"connection refused", "reachable"}},
		{name: "missing file", err: errors.Wrap(&fs.PathError{Op: "open", Path: "/x.tar", Err: fs.ErrNotExist}, "opening docker archive"),
			code: 3, want: []string{"/x.tar", "check the path"}},
		{name: "debug prints the stack", err: errors.Wrap(types.ErrDenied, "writing"), args: []string{"--debug"},
			code: 4, want: []string{"access denied", "main_test.go"}},
		{name: "not found or not authorized", err: errors.Wrap(errors.Wrap(types.ErrNotFoundOrDenied, "h/r: not found or not authorized"), "reading manifest of docker://h/r:1"),
			code: 4, want: []string{"not found or not authorized", "check the name", "imgcopy login"}},
		{name: "repository not found", err: errors.Wrap(types.ErrRepositoryNotFound, "listing tags of h/r"),
			code: 3, want: []string{"check the registry and repository name"}},
		{name: "rate limited", err: errors.Wrap(types.ErrRateLimited, "reading manifest of docker://h/r:1 (Retry-After: 60)"),
			code: 5, want: []string{"Retry-After: 60", "--retry-times"}},
		{name: "schema1 signature", err: errors.Wrap(types.ErrSignatureInvalid, "reading manifest of docker://h/r:1"),
			code: 6, want: []string{"do not trust this source"}},
		{name: "network failure", err: errors.Wrap(types.ErrNetwork, "reading blob sha256:aa"),
			code: 7, want: []string{"reading blob sha256:aa"}},
		{name: "invalid copy option from the library", err: types.UsageError{Err: errors.New("gzip compression level 12 out of range")},
			code: 2, want: []string{"out of range", "imgcopy --help"}},
		{name: "broken auth file: usage, without the --help line", err: errors.Wrap(types.ErrInvalidAuthFile, "parsing /x/auth.json"),
			code: 2, want: []string{"invalid auth file"}, wantNone: "imgcopy --help"},
		{name: "invalid manifest", err: errors.Wrap(types.ErrInvalidManifest, "parsing manifest"),
			code: 1, want: []string{"invalid manifest"}},
		// verify found a missing manifest in a bundle: the name given was right, so no hint.
		{name: "problems found by verify", err: &integrity.Error{Problems: []integrity.Problem{{Image: "oci:/b:app", Err: errors.Wrap(types.ErrManifestNotFound, "manifest sha256:aa listed in index sha256:bb")}}},
			code: 6, want: []string{"verification failed", "listed in index"}, wantNone: "list-tags"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.copyErr = tc.err
			if code := h.run(append(tc.args, "dir:/a", "dir:/b")...); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			out := h.stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stderr %q does not contain %q", out, w)
				}
			}
			if tc.wantNone != "" {
				if strings.Contains(out, tc.wantNone) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
					t.Errorf("stderr is not one line without stack: %q", out)
				}
			}
		})
	}
}

func TestInterruptExits130(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	h.env.copyImage = func(ctx context.Context, _, _ types.ImageReference, _ *copier.Options) (*copier.Result, error) {
		cancel()
		return nil, errors.Wrap(ctx.Err(), "copying blob sha256:aa")
	}
	if code := run(ctx, h.env, []string{"imgcopy", "dir:/a", "dir:/b"}); code != exitInterrupted {
		t.Errorf("exit %d, want %d", code, exitInterrupted)
	}
	if !strings.Contains(h.stderr.String(), "interrupted") {
		t.Errorf("stderr %q", h.stderr.String())
	}
}

func TestProgressJSONAndDigestFile(t *testing.T) {
	h := newHarness(t)
	h.events = []copier.ProgressEvent{
		{Kind: copier.EventBlobStarted, Digest: "sha256:aa", Size: 10},
		{Kind: copier.EventBlobProgress, Digest: "sha256:aa", Size: 10, Offset: 10},
		{Kind: copier.EventBlobDone, Digest: "sha256:aa", Size: 10, Offset: 10},
		{Kind: copier.EventBlobMounted, Digest: "sha256:bb", Size: 5, MountedFrom: "other/repo"},
		{Kind: copier.EventManifestWritten, Digest: testDigest},
	}
	digestFile := filepath.Join(t.TempDir(), "digest")
	if code := h.run("--progress", "json", "--digestfile", digestFile, "dir:/a", "oci:/b"); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	var kinds []string
	sc := bufio.NewScanner(&h.stdout)
	var last map[string]any
	for sc.Scan() {
		last = map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		kinds = append(kinds, last["event"].(string))
	}
	want := "blob-started blob-progress blob-done blob-mounted manifest-written done"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	if last["digest"] != testDigest.String() || last["blobsCopied"] != float64(2) || last["bytesCopied"] != float64(1234) {
		t.Errorf("summary %v", last)
	}
	b, err := os.ReadFile(digestFile)
	if err != nil || string(b) != testDigest.String() {
		t.Errorf("digest file %q, %v", b, err)
	}
}

func TestPlainProgressAndQuiet(t *testing.T) {
	events := []copier.ProgressEvent{
		{Kind: copier.EventBlobStarted, Digest: "sha256:aa", Size: 2048},
		{Kind: copier.EventBlobReused, Digest: "sha256:bb", Size: 5},
		{Kind: copier.EventBlobMounted, Digest: "sha256:cc", Size: 5, MountedFrom: "lib/x"},
		{Kind: copier.EventBlobDone, Digest: "sha256:aa", Size: 2048, Offset: 2048},
	}
	h := newHarness(t)
	h.events = events
	if code := h.run("dir:/a", "oci:/b"); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	for _, w := range []string{"Copying blob sha256:aa (2.0 KiB)", "sha256:bb skipped: already exists", "sha256:cc skipped: mounted from lib/x",
		"Wrote " + testDigest.String() + " to oci:/b: 2 blob(s) copied (1.2 KiB), 0 reused (0 B)"} {
		if !strings.Contains(h.stdout.String(), w) {
			t.Errorf("stdout %q does not contain %q", h.stdout.String(), w)
		}
	}
	q := newHarness(t)
	q.events = events
	if code := q.run("--quiet", "dir:/a", "oci:/b"); code != exitOK || q.stdout.Len() != 0 {
		t.Errorf("quiet: exit %d, stdout %q", code, q.stdout.String())
	}
}

func TestBarsRenderer(t *testing.T) {
	var buf bytes.Buffer
	b := newBarsOutput(&buf)
	b.event(copier.ProgressEvent{Kind: copier.EventBlobStarted, Digest: "sha256:aaaaaaaaaaaaaaaa", Size: 100})
	b.event(copier.ProgressEvent{Kind: copier.EventBlobProgress, Digest: "sha256:aaaaaaaaaaaaaaaa", Size: 100, Offset: 100})
	// Recompressed: the done event names the stored digest.
	b.event(copier.ProgressEvent{Kind: copier.EventBlobDone, Digest: "sha256:cccccccccccccccc", Size: 90, Offset: 100})
	b.event(copier.ProgressEvent{Kind: copier.EventBlobReused, Digest: "sha256:bbbbbbbbbbbbbbbb", Size: 5})
	b.finish(fakeRef{t: fakeTransport{"oci"}, s: "/x"}, &copier.Result{ManifestDigest: testDigest}, nil, 0)
	out := buf.String()
	for _, w := range []string{"Copying blob sha256:aaaaaaaaaaaa", "done", "skipped: already exists", "Wrote " + testDigest.String()} {
		if !strings.Contains(out, w) {
			t.Errorf("bars output %q does not contain %q", out, w)
		}
	}
}

func TestManifestDigestCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest.json")
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	if code := h.run("manifest-digest", path); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if got := strings.TrimSpace(h.stdout.String()); got != digest.FromBytes(body).String() {
		t.Errorf("got %q", got)
	}
	h = newHarness(t)
	if code := h.run("manifest-digest", path+".missing"); code != 3 || !strings.Contains(h.stderr.String(), "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", code, h.stderr.String())
	}
	// An image reference, where skopeo's manifest-digest takes a file: say how to get its digest.
	ref := "oci-archive:" + filepath.Join(t.TempDir(), "bundle.tar")
	h = newHarness(t)
	if code := h.run("manifest-digest", ref); code != exitUsage || !strings.Contains(h.stderr.String(), "imgcopy inspect --format '{{.Digest}}' "+ref) {
		t.Errorf("a reference: exit %d, stderr %q", code, h.stderr.String())
	}
}

func TestLoginLogout(t *testing.T) {
	authfile := filepath.Join(t.TempDir(), "auth.json")
	h := newHarness(t)
	h.env.stdin = strings.NewReader("pa55word\n")
	if code := h.run("login", "--username", "alice", "--password-stdin", "--authfile", authfile, "127.0.0.1:5000"); code != exitOK {
		t.Fatalf("login exit %d: %s", code, h.stderr.String())
	}
	b, err := os.ReadFile(authfile)
	if err != nil || !strings.Contains(string(b), "127.0.0.1:5000") || strings.Contains(h.stdout.String(), "pa55word") {
		t.Fatalf("auth file %q, %v; stdout %q", b, err, h.stdout.String())
	}
	if a := h.authChecked; a == nil || a.DockerAuthConfig == nil || a.DockerAuthConfig.Password != "pa55word" || a.InsecureSkipTLSVerify != types.OptionalBoolUndefined {
		t.Fatalf("credentials checked with %+v", a)
	}
	h = newHarness(t)
	if code := h.run("logout", "--authfile", authfile, "127.0.0.1:5000"); code != exitOK {
		t.Fatalf("logout exit %d: %s", code, h.stderr.String())
	}
	h = newHarness(t)
	if code := h.run("logout", "--authfile", authfile, "127.0.0.1:5000"); code != exitFailure {
		t.Errorf("second logout exit %d, want %d: %s", code, exitFailure, h.stderr.String())
	}
}

func TestHelpHasExamplesForEveryCommand(t *testing.T) {
	h := newHarness(t)
	app := newApp(h.env)
	for _, cmd := range app.Commands {
		t.Run(cmd.Name, func(t *testing.T) {
			h := newHarness(t)
			if code := h.run(cmd.Name, "--help"); code != exitOK {
				t.Fatalf("exit %d", code)
			}
			if !strings.Contains(h.stdout.String(), "Examples:") || !strings.Contains(h.stdout.String(), "imgcopy "+cmd.Name) {
				t.Errorf("help of %s has no examples:\n%s", cmd.Name, h.stdout.String())
			}
		})
	}
	h = newHarness(t)
	if code := h.run("--help"); code != exitOK || !strings.Contains(h.stdout.String(), "oci-archive:PATH") {
		t.Errorf("app help: exit %d\n%s", code, h.stdout.String())
	}
	for _, want := range []string{"Exit codes:", "3    not found", "5    rate limited", "7    network or TLS", "130  interrupted"} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("app help lacks %q", want)
		}
	}
}

// TestExitCode checks the one mapping from a command's error to the exit status, which
// every command (and any added later) goes through.
func TestExitCode(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"success", context.Background(), nil, 0},
		{"other", context.Background(), errors.New("boom"), 1},
		{"command line", context.Background(), usageErrorf("bad flag"), 2},
		{"library usage error", context.Background(), errors.Wrap(types.UsageError{Err: errors.New("bad option")}, "copying"), 2},
		{"not found", context.Background(), errors.Wrap(types.ErrBlobNotFound, "x"), 3},
		{"auth", context.Background(), errors.Wrap(types.ErrNotFoundOrDenied, "x"), 4},
		{"rate limited", context.Background(), errors.Wrap(types.ErrRateLimited, "x"), 5},
		{"verification", context.Background(), errors.Wrap(types.ErrDigestMismatch, "x"), 6},
		{"network", context.Background(), errors.Wrap(&net.OpError{Op: "dial"}, "x"), 7},
		{"cancelled", context.Background(), errors.Wrap(context.Canceled, "x"), 130},
		{"any failure after Ctrl-C", cancelled, errors.Wrap(types.ErrBlobNotFound, "x"), 130},
	}
	for _, tc := range cases {
		if got := exitCode(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestProgressJSONFailedHasClass(t *testing.T) {
	h := newHarness(t)
	h.copyErr = errors.Wrap(types.ErrManifestNotFound, "reading manifest of dir:/a")
	if code := h.run("--progress", "json", "dir:/a", "oci:/b"); code != 3 {
		t.Fatalf("exit %d, want 3: %s", code, h.stderr.String())
	}
	var last map[string]any
	sc := bufio.NewScanner(&h.stdout)
	for sc.Scan() {
		last = map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
	}
	if msg, _ := last["error"].(string); last["event"] != "failed" || last["class"] != "not-found" || !strings.Contains(msg, "manifest not found") {
		t.Errorf("last event %v, want failed with class not-found and the error", last)
	}
}

func TestCPUProfileFlag(t *testing.T) {
	h := newHarness(t)
	p := filepath.Join(t.TempDir(), "cpu.out")
	if code := h.run("--cpuprofile", p, "dir:/a", "dir:/b"); code != exitOK {
		t.Fatalf("exit code %d: %s", code, h.stderr.String())
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
		t.Fatalf("profile not written: %v", err)
	}
	if code := h.run("--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir"), "dir:/a", "dir:/b"); code != exitUsage {
		t.Errorf("unwritable profile path: exit code %d, want %d", code, exitUsage)
	}
}

func TestVersionFlagAndCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		h := newHarness(t)
		if code := h.run(args...); code != exitOK {
			t.Fatalf("%v: exit %d, stderr %s", args, code, h.stderr.String())
		}
		if got := h.stdout.String(); !strings.HasPrefix(got, "imgcopy version ") || !strings.Contains(got, runtime.Version()) {
			t.Errorf("%v printed %q", args, got)
		}
		if h.opts != nil {
			t.Errorf("%v started a copy", args)
		}
	}
}

func TestLoginRefusedStoresNothing(t *testing.T) {
	authfile := filepath.Join(t.TempDir(), "auth.json")
	h := newHarness(t)
	h.authErr = errors.Wrap(types.ErrUnauthorized, "registry said no")
	h.env.stdin = strings.NewReader("wrong\n")
	code := h.run("login", "--username", "alice", "--password-stdin", "--tls-verify=false", "--cert-dir", "/certs", "--authfile", authfile, "127.0.0.1:5000")
	if code != 4 || !strings.Contains(h.stderr.String(), "nothing stored") {
		t.Fatalf("exit %d, stderr %q", code, h.stderr.String())
	}
	if _, err := os.Stat(authfile); !os.IsNotExist(err) {
		t.Fatalf("auth file written after refused credentials (stat: %v)", err)
	}
	if a := h.authChecked; a.InsecureSkipTLSVerify != types.OptionalBoolTrue || a.CertDir != "/certs" {
		t.Fatalf("TLS flags not passed to the check: %+v", a)
	}
}

// TestLoginURL: login and logout take a registry written as a URL, as docker login and skopeo
// login do (https://HOST, https://index.docker.io/v1/), and store or remove it under its host;
// a URL naming a repository is a usage error, found before any password is asked for.
func TestLoginURL(t *testing.T) {
	authfile := filepath.Join(t.TempDir(), "auth.json")
	h := newHarness(t)
	h.env.stdin = strings.NewReader("pa55word\n")
	if code := h.run("login", "--username", "alice", "--password-stdin", "--authfile", authfile, "https://127.0.0.1:5000/v2/"); code != exitOK {
		t.Fatalf("login exit %d: %s", code, h.stderr.String())
	}
	b, err := os.ReadFile(authfile)
	if err != nil || !strings.Contains(string(b), `"127.0.0.1:5000"`) || strings.Contains(string(b), "https") {
		t.Fatalf("auth file %q, %v", b, err)
	}
	h = newHarness(t)
	if code := h.run("login", "--get-login", "--authfile", authfile, "http://127.0.0.1:5000"); code != exitOK || h.stdout.String() != "alice\n" {
		t.Errorf("get-login exit %d, stdout %q: %s", code, h.stdout.String(), h.stderr.String())
	}
	h = newHarness(t)
	if code := h.run("logout", "--authfile", authfile, "https://127.0.0.1:5000"); code != exitOK || !strings.Contains(h.stdout.String(), "for 127.0.0.1:5000 from") {
		t.Fatalf("logout exit %d, stdout %q: %s", code, h.stdout.String(), h.stderr.String())
	}
	h = newHarness(t) // stdin is no terminal: a password prompt would fail differently
	if code := h.run("login", "--authfile", authfile, "https://quay.io/team/app"); code != exitUsage || !strings.Contains(h.stderr.String(), "not a repository") {
		t.Errorf("a repository URL: exit %d: %s", code, h.stderr.String())
	}
}
