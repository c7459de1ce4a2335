package main

import (
	"os"
	"time"

	"github.com/pkg/errors"
	"github.com/urfave/cli/v2"

	copier "github.com/imgcopy/imgcopy/copy"
)

func copyCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "copy",
		Usage:     "copy an image (the default command: imgcopy SRC DST)",
		ArgsUsage: "SRC DST",
		Description: `Copies the image SRC to DST, both TRANSPORT:REFERENCE. Blobs the destination already has are
skipped; every blob is verified against its digest. Without --format the manifest is kept
byte for byte when the destination can store it (so the digest stays the same).
A copy that was killed or interrupted continues where it stopped when run again: partial
downloads, upload sessions and staged blobs are kept (--no-resume turns that off).
Flags may come before or after SRC and DST; everything after "--" is an argument.

Examples:
   imgcopy copy oci:examples/hello:latest dir:/tmp/hello
   imgcopy --format oci docker-archive:/tmp/app.tar oci-archive:/tmp/app-oci.tar:v1
   imgcopy --src-creds alice --dest-tls-verify=false docker://quay.io/org/app:1 docker://127.0.0.1:5000/app:1
   imgcopy --platform linux/arm64 docker://alpine:3 oci:/tmp/alpine:3-arm64
   imgcopy --progress json --digestfile /tmp/digest oci:examples/hello:latest oci-archive:/tmp/hello.tar`,
		Flags:  copyFlags(),
		Action: func(c *cli.Context) error { return copyCommand(c, e) },
	}
}

// copyCommand parses SRC, DST and the flags and makes one copier.Image call.
func copyCommand(c *cli.Context, e *env) error {
	if c.NArg() == 0 && c.Command.Name == c.App.Name {
		return cli.ShowAppHelp(c)
	}
	if err := checkArgs(c, 2, "SRC and DST"); err != nil {
		return err
	}
	opts, err := copyOptions(c, e)
	if err != nil {
		return err
	}
	overridePlatform(c, opts)
	out, err := newProgress(e, c.String("progress"), c.Bool("quiet"))
	if err != nil {
		return err
	}
	srcRef, err := parseRef(e, c.Args().Get(0))
	if err != nil {
		return err
	}
	destRef, err := parseRef(e, c.Args().Get(1))
	if err != nil {
		return err
	}
	if f := c.String("archive-compress"); f != "" && !isArchiveTransport(destRef.Transport().Name()) {
		return usageErrorf("--archive-compress %s: the %s transport writes no archive (only docker-archive and oci-archive do); "+
			"for compressed layers use --dest-compress-format", f, destRef.Transport().Name())
	}
	opts.BlobInfoCache = e.openCache()
	opts.Progress = out.event

	start := time.Now()
	res, err := e.copyImage(c.Context, destRef, srcRef, opts)
	out.finish(destRef, res, err, time.Since(start))
	if err != nil {
		return err
	}
	if path := c.String("digestfile"); path != "" {
		if err := os.WriteFile(path, []byte(res.ManifestDigest.String()), 0o644); err != nil {
			return errors.Wrap(err, "writing --digestfile")
		}
	}
	return nil
}

// isArchiveTransport reports whether a transport writes one archive file that
// --archive-compress can compress as a whole.
func isArchiveTransport(name string) bool { return name == "docker-archive" || name == "oci-archive" }

// overridePlatform makes --override-os/--override-arch/--override-variant, given without
// --all, --multi-arch or --platform, copy only that platform's image of a multi-platform
// source, as skopeo copy does with them: copying every platform (the default) would ignore
// them.
func overridePlatform(c *cli.Context, opts *copier.Options) {
	if opts.MultiArch != copier.MultiArchDefault || len(opts.Platforms) > 0 {
		return
	}
	if c.String("override-os") != "" || c.String("override-arch") != "" || c.String("override-variant") != "" {
		opts.MultiArch = copier.MultiArchSystem
	}
}
