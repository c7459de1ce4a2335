package main

import (
	"github.com/urfave/cli/v2"
)

const appDescription = `imgcopy copies container images between registries, docker-archive tarballs, OCI
image layouts (directories or tarballs) and plain directories, verifying every byte.

Images are named TRANSPORT:REFERENCE:
   docker://HOST/REPO[:TAG][@DIGEST]     a registry (docker://busybox means docker.io/library/busybox:latest)
   docker-archive:PATH[:NAME:TAG]        a "docker save" tarball (PATH:@N picks the N-th image)
   oci:PATH[:REF]  oci:PATH@DIGEST       an OCI image layout directory
   oci-archive:PATH[:REF]                an OCI image layout in a tarball
   dir:PATH                              a directory of blobs and a manifest.json

Examples:
   imgcopy oci:examples/hello:latest docker-archive:/tmp/hello.tar:hello:latest
   imgcopy docker://busybox:latest oci:/tmp/busybox:latest
   imgcopy --all --dest-creds user:pass docker://docker.io/library/alpine:3 docker://127.0.0.1:5000/alpine:3
   imgcopy sync --config sync.yaml docker://registry.example/mirror
   imgcopy inspect docker://busybox:latest
   imgcopy list-tags oci:/tmp/busybox
   imgcopy verify oci-archive:/tmp/bundle.tar`

// --version prints what the version command prints, to the app's writer.
func init() { cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) } }

// newApp builds the command line interface on e.
func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:        "imgcopy",
		Usage:       "copy container images between registries, archives and layouts",
		UsageText:   "imgcopy [global flags] [copy flags] SRC DST\nimgcopy [global flags] COMMAND [flags] ARGS...",
		Description: appDescription + "\n\n" + exitCodeHelp,
		Version:     version(),
		Flags:       append(globalFlags(), copyFlags()...),
		// A repeatable flag takes each value whole: a regular expression such as
		// '^v[0-9]{1,3}$' has commas. Flags whose values cannot (platforms, tags, media
		// types) still accept comma-separated lists (listFlag).
		DisableSliceFlagSeparator: true,
		Action:                    func(c *cli.Context) error { return copyCommand(c, e) },
		Before: func(c *cli.Context) error {
			if err := setupLogging(c, e); err != nil {
				return err
			}
			stop, err := startProfile(c)
			e.stopProfile = stop
			return err
		},
		After: func(*cli.Context) error {
			if e.stopProfile == nil {
				return nil
			}
			return e.stopProfile()
		},
		OnUsageError:         onUsageError,
		ExitErrHandler:       func(*cli.Context, error) {},
		Reader:               e.stdin,
		Writer:               e.stdout,
		ErrWriter:            e.stderr,
		HideHelpCommand:      true,
		HideVersion:          false, // --version and -v, as in skopeo
		Suggest:              true,
		EnableBashCompletion: false,
		Commands: []*cli.Command{
			copyCmd(e),
			syncCmd(e),
			inspectCmd(e),
			listTagsCmd(e),
			referrersCmd(e),
			deleteCmd(e),
			verifyCmd(e),
			manifestDigestCmd(e),
			loginCmd(e),
			logoutCmd(e),
			versionCmd(e),
		},
	}
	app.Flags = withCachedNames(app.Flags)
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
		cmd.Flags = withCachedNames(cmd.Flags)
	}
	return app
}
