package main

import (
	"bufio"
	"os"
	"strings"

	"github.com/distribution/reference"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/urlfetch"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// globalFlags apply to every command and go before it (imgcopy --debug inspect ...).
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "debug", Usage: "log debug messages and print errors with their stack"},
		&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log `LEVEL` (error, warn, info, debug, trace)"},
		&cli.StringFlag{Name: "override-os", Usage: "use `OS` instead of the running OS when choosing from a multi-platform image"},
		&cli.StringFlag{Name: "override-arch", Usage: "use `ARCH` instead of the running architecture when choosing from a multi-platform image"},
		&cli.StringFlag{Name: "override-variant", Usage: "use `VARIANT` instead of the running architecture variant when choosing from a multi-platform image"},
		&cli.StringFlag{Name: "tmpdir", Usage: "`DIR` for large temporary files (spooled archives and layers)"},
		readTimeoutFlag,
		profileFlag,
		&cli.BoolFlag{Name: "insecure-policy", Usage: "accepted for skopeo's scripts: imgcopy enforces no signature policy"},
	}
}

// imageFlags are the per-image access flags; prefix is "src-", "dest-" or "" (single-image
// commands such as inspect use skopeo's unprefixed names).
func imageFlags(prefix, side string) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: prefix + "creds", Usage: "use `USERNAME[:PASSWORD]` for the " + side + " registry"},
		&cli.StringFlag{Name: prefix + "registry-token", Usage: "send bearer `TOKEN` to the " + side + " registry"},
		&cli.BoolFlag{Name: prefix + "no-creds", Usage: "access the " + side + " registry anonymously"},
		&cli.StringFlag{Name: prefix + "cert-dir", Usage: "use certificates (*.crt, *.cert, *.key) in `DIR` for the " + side + " registry"},
		&cli.BoolFlag{Name: prefix + "tls-verify", Value: true, Usage: "require HTTPS and verify certificates for the " + side + " registry"},
	}
	if prefix == "" {
		flags = append(flags,
			&cli.StringFlag{Name: "authfile", Usage: "read credentials from auth file `PATH`"},
			&cli.IntFlag{Name: "retry-times", Usage: "retry a failed registry request `N` times", DefaultText: "3"},
			&cli.DurationFlag{Name: "retry-delay", Usage: "first retry delay (`DURATION`, doubled per attempt)", DefaultText: "the transport's default"},
		)
	} else {
		flags = append(flags, &cli.StringFlag{Name: prefix + "authfile", Usage: "read " + side + " credentials from auth file `PATH` (overrides --authfile)"})
	}
	return flags
}

// copyFlags are the flags of the copy command (also accepted before SRC DST without "copy").
func copyFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "authfile", Usage: "read credentials for both sides from auth file `PATH`"},
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "write the manifest as `FORMAT`: oci or v2s2 (default: keep the source's)"},
		&cli.StringFlag{Name: "multi-arch", Usage: "for a multi-platform source copy `WHAT`: all, system or index-only (default: all, or system for a docker-archive)"},
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "same as --multi-arch=all"},
		&cli.StringSliceFlag{Name: "platform", Usage: "copy only the image for `OS/ARCH[/VARIANT]` from a multi-platform source (repeatable)"},
		&cli.BoolFlag{Name: "preserve-digests", Usage: "fail instead of changing any digest"},
		&cli.StringFlag{Name: "dest-compress-format", Usage: "store every layer compressed with `FORMAT` (gzip or zstd), recompressing layers the destination has in another format"},
		&cli.BoolFlag{Name: "force-compress-format", Usage: "as in skopeo: enforce --dest-compress-format (imgcopy always does)"},
		&cli.IntFlag{Name: "dest-compress-level", Usage: "compression `LEVEL`: -2 to 9 for gzip, 1 to 22 for zstd", DefaultText: "the format's default"},
		&cli.BoolFlag{Name: "dest-decompress", Usage: "store layers uncompressed"},
		&cli.BoolFlag{Name: "include-non-distributable", Usage: "copy foreign (non-distributable) layers from their URLs and store them as ordinary layers (default: keep them as references)"},
		&cli.StringSliceFlag{Name: "additional-tag", Usage: "also tag a docker-archive destination as `NAME:TAG` (repeatable)"},
		&cli.StringFlag{Name: "archive-compress", Usage: "compress a docker-archive or oci-archive destination as a whole with `FORMAT`: gzip, zstd or none (default: by the file suffix, .gz/.tgz or .zst/.tzst)"},
		&cli.IntFlag{Name: "image-parallel-copies", Usage: "copy at most `N` layers at once", DefaultText: "6"},
		&cli.IntFlag{Name: "retry-times", Usage: "retry a failed registry request `N` times", DefaultText: "3"},
		&cli.DurationFlag{Name: "retry-delay", Usage: "first retry delay (`DURATION`, doubled per attempt)", DefaultText: "the transport's default"},
		&cli.StringFlag{Name: "digestfile", Usage: "write the digest of the written manifest to `FILE`"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"},
		&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress output `MODE`: auto (bars on a terminal, else plain), bars, plain or json"},
	}
	flags = append(flags, referrersFlags()...)
	flags = append(flags, fsyncFlag, forceRecursiveFlag)
	flags = append(flags, resumeFlags()...)
	flags = append(flags, imageFlags("src-", "source")...)
	return append(flags, imageFlags("dest-", "destination")...)
}

// systemContext builds the SystemContext of one side from its flags (prefix as in imageFlags).
func systemContext(c *cli.Context, e *env, prefix string) (*types.SystemContext, error) {
	sys := &types.SystemContext{
		AuthFilePath:              c.String("authfile"),
		DockerBearerRegistryToken: c.String(prefix + "registry-token"),
		NoCreds:                   c.Bool(prefix + "no-creds"),
		CertDir:                   c.String(prefix + "cert-dir"),
		OSChoice:                  c.String("override-os"),
		ArchitectureChoice:        c.String("override-arch"),
		VariantChoice:             c.String("override-variant"),
		BigFilesTemporaryDir:      c.String("tmpdir"),
		RetryDelay:                c.Duration("retry-delay"),
		ReadTimeout:               c.Duration("read-timeout"),
	}
	if prefix != "" && c.String(prefix+"authfile") != "" {
		sys.AuthFilePath = c.String(prefix + "authfile")
	}
	if c.IsSet(prefix + "tls-verify") {
		sys.InsecureSkipTLSVerify = types.NewOptionalBool(!c.Bool(prefix + "tls-verify"))
	}
	if c.IsSet("retry-times") {
		n := c.Int("retry-times")
		if n < 0 {
			return nil, usageErrorf("--retry-times must not be negative")
		}
		sys.RetryTimes = &n
	}
	if creds := c.String(prefix + "creds"); creds != "" {
		if sys.NoCreds {
			return nil, usageErrorf("--%screds and --%sno-creds cannot be used together", prefix, prefix)
		}
		auth, err := parseCreds(e, prefix+"creds", creds)
		if err != nil {
			return nil, err
		}
		sys.DockerAuthConfig = &auth
	}
	return sys, nil
}

// parseCreds splits USERNAME[:PASSWORD]; without a password it asks on the terminal.
func parseCreds(e *env, flag, creds string) (types.DockerAuthConfig, error) {
	user, password, ok := strings.Cut(creds, ":")
	if user == "" {
		return types.DockerAuthConfig{}, usageErrorf("--%s: empty user name in %q", flag, "USERNAME[:PASSWORD]")
	}
	if !ok {
		p, err := readPassword(e, "Password for "+user+": ")
		if err != nil {
			return types.DockerAuthConfig{}, usageError{errors.Wrapf(err, "--%s has no password", flag)}
		}
		password = p
	}
	return types.DockerAuthConfig{Username: user, Password: password}, nil
}

// readPassword reads a password from the terminal without echo.
func readPassword(e *env, prompt string) (string, error) {
	if !e.isTerminal(e.stdin) {
		return "", errors.New("stdin is not a terminal to ask for it")
	}
	printf(e.stderr, "%s", prompt)
	b, err := term.ReadPassword(int(e.stdin.(*os.File).Fd()))
	printf(e.stderr, "\n")
	return string(b), err
}

// readLine reads one line (without the newline) from r, e.g. for --password-stdin.
func readLine(r *bufio.Reader) (string, error) {
	s, err := r.ReadString('\n')
	if err != nil && s == "" {
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// copyOptions maps the copy flags onto copier.Options (without Progress and cache).
func copyOptions(c *cli.Context, e *env) (*copier.Options, error) {
	opts := &copier.Options{
		PreserveDigests:         c.Bool("preserve-digests"),
		ForceRecursive:          c.Bool("force-recursive"),
		DestinationDecompress:   c.Bool("dest-decompress"),
		IncludeNonDistributable: c.Bool("include-non-distributable"),
	}
	var err error
	if opts.SourceCtx, err = systemContext(c, e, "src-"); err != nil {
		return nil, err
	}
	opts.ForeignLayerFetcher = urlfetch.New(opts.SourceCtx).Fetch
	if opts.DestinationCtx, err = systemContext(c, e, "dest-"); err != nil {
		return nil, err
	}
	if opts.ForceManifestMIMEType, err = formatFlag(c.String("format")); err != nil {
		return nil, err
	}
	if opts.MultiArch, err = multiArchFlag(c.String("multi-arch"), c.Bool("all")); err != nil {
		return nil, err
	}
	for _, s := range listFlag(c, "platform") {
		p, err := manifest.ParsePlatform(s)
		if err != nil {
			return nil, usageError{errors.Wrap(err, "--platform")}
		}
		opts.Platforms = append(opts.Platforms, p)
	}
	if err := compressionFlags(c, opts); err != nil {
		return nil, err
	}
	if err := applyResumeFlags(c, opts); err != nil {
		return nil, err
	}
	if opts.ImageParallelCopies = c.Int("image-parallel-copies"); opts.ImageParallelCopies < 0 {
		return nil, usageErrorf("--image-parallel-copies must not be negative")
	}
	opts.DestinationCtx.NoFsync = !c.Bool("fsync")
	switch f := c.String("archive-compress"); f {
	case "", "gzip", "zstd", "none":
		opts.DestinationCtx.ArchiveCompression = f
	default:
		return nil, usageErrorf("--archive-compress %q: want gzip, zstd or none", f)
	}
	if err := referrersOptions(c, opts); err != nil {
		return nil, err
	}
	for _, t := range listFlag(c, "additional-tag") {
		tagged, err := parseAdditionalTag(t)
		if err != nil {
			return nil, err
		}
		opts.DestinationCtx.DockerArchiveAdditionalTags = append(opts.DestinationCtx.DockerArchiveAdditionalTags, tagged)
	}
	return opts, nil
}

func formatFlag(s string) (string, error) {
	switch s {
	case "":
		return "", nil
	case "oci":
		return imgspecv1.MediaTypeImageManifest, nil
	case "v2s2":
		return manifest.DockerV2Schema2MediaType, nil
	}
	return "", usageErrorf("--format %q: want oci or v2s2", s)
}

func multiArchFlag(s string, all bool) (copier.MultiArch, error) {
	m := map[string]copier.MultiArch{"": copier.MultiArchDefault, "all": copier.MultiArchAll, "system": copier.MultiArchSystem, "index-only": copier.MultiArchIndexOnly}
	v, ok := m[s]
	if !ok {
		return 0, usageErrorf("--multi-arch %q: want all, system or index-only", s)
	}
	if all {
		if s != "" && s != "all" {
			return 0, usageErrorf("--all and --multi-arch=%s contradict each other", s)
		}
		v = copier.MultiArchAll
	}
	return v, nil
}

func compressionFlags(c *cli.Context, opts *copier.Options) error {
	switch f := c.String("dest-compress-format"); f {
	case "", "gzip", "zstd":
		opts.DestinationCompression = f
	default:
		return usageErrorf("--dest-compress-format %q: want gzip or zstd", f)
	}
	if c.Bool("force-compress-format") && opts.DestinationCompression == "" {
		return usageErrorf("--force-compress-format needs --dest-compress-format")
	}
	if opts.DestinationDecompress && (opts.DestinationCompression != "" || c.IsSet("dest-compress-level")) {
		return usageErrorf("--dest-decompress cannot be combined with --dest-compress-format or --dest-compress-level")
	}
	if c.IsSet("dest-compress-level") {
		level := c.Int("dest-compress-level")
		opts.DestinationCompressionLevel = &level
	}
	return nil
}

func parseAdditionalTag(s string) (reference.NamedTagged, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, usageError{errors.Wrapf(err, "--additional-tag %q", s)}
	}
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		return nil, usageErrorf("--additional-tag %q: want NAME:TAG", s)
	}
	return tagged, nil
}

// listFlag returns the values of the repeatable flag name, each also split at commas
// (--platform linux/amd64,linux/arm64), for flags whose values cannot hold a comma.
func listFlag(c *cli.Context, name string) []string {
	var out []string
	for _, v := range c.StringSlice(name) {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}
