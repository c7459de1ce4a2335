package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/imgcopy/imgcopy/integrity"
)

func verifyCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check every blob of the images in a layout, an archive or a registry against its digest",
		ArgsUsage: "REF",
		Description: `Reads every manifest, config and layer of the images REF selects and checks each against
its digest and size, and that everything a manifest references is there: all images of an
OCI layout, oci-archive or docker-archive named by its path alone (or of a dir: store), every
tag of a registry repository named without a tag, the image REF names otherwise, each with the
artifacts that refer to it (signatures, SBOMs) and the manifests its digest tags
(sha256-<hex>.sig) name. Blobs shared by several images are read once (in a dir: store, where
each image has its own copy, once per image); nothing is held in memory. Prints a summary; any problem (a mismatch, a missing
blob or manifest, a truncated or corrupt archive) is listed with the digest at fault and the
exit code is 6.

Examples:
   imgcopy verify oci-archive:/media/usb/bundle.tar
   imgcopy verify docker-archive:/tmp/images.tar.zst
   imgcopy verify --creds user:pass docker://registry.example/app:v1`,
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "parallel", Value: 4, Usage: "check at most `N` blobs of an image at once"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but problems"},
		}, imageFlags("", "image's")...),
		Action: func(c *cli.Context) error { return verifyCommand(c, e) },
	}
}

func verifyCommand(c *cli.Context, e *env) error {
	if err := checkArgs(c, 1, "REF"); err != nil {
		return err
	}
	ref, err := parseRef(e, c.Args().First())
	if err != nil {
		return err
	}
	sys, err := systemContext(c, e, "")
	if err != nil {
		return err
	}
	if c.Int("parallel") < 1 {
		return usageErrorf("--parallel must be at least 1")
	}
	rep, err := integrity.Check(c.Context, ref, sys, integrity.Options{Parallel: c.Int("parallel")})
	if rep != nil && !c.Bool("quiet") {
		related := ""
		if rep.Related > 0 {
			related = fmt.Sprintf(" and %d related manifest(s) (referrers, digest tags)", rep.Related)
		}
		printf(e.stdout, "Checked %d image(s)%s: %d manifest(s), %d blob(s) (%s); %d problem(s)\n",
			rep.Images, related, rep.Manifests, rep.Blobs, humanBytes(rep.Bytes), len(rep.Problems))
	}
	return err
}
