package main

import "github.com/urfave/cli/v2"

// forceRecursiveFlag makes a copy (and every image of a sync) check each blob and instance
// manifest even when the destination already has the top-level manifest, so that a
// destination whose blobs were deleted is repaired (regctl's and regsync's name for it).
var forceRecursiveFlag = &cli.BoolFlag{
	Name: "force-recursive",
	Usage: "check every blob and manifest at the destination even when it has the image, and copy what is missing " +
		"(repairs a destination whose blobs were deleted; a sync then also checks the images it finds up to date)",
}
