package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	digest "github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/inspect"
)

// referrersFlags are the copy flags that carry signatures and other artifacts with an image.
func referrersFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "referrers", Usage: "also copy the artifacts referring to the image (signatures, SBOMs, attestations), recursively"},
		&cli.StringSliceFlag{Name: "referrers-type", Usage: "with --referrers, copy only artifacts of artifactType `TYPE` (repeatable)"},
		&cli.BoolFlag{Name: "digest-tags", Usage: "also copy the tags named after each copied manifest's digest (cosign's sha256-<hex>.sig, .att, .sbom)"},
		&cli.BoolFlag{Name: "remove-signatures", Usage: "accepted for skopeo's scripts: imgcopy copies no signatures unless --referrers or --digest-tags asks"},
	}
}

// referrersOptions maps the referrers flags onto opts.
func referrersOptions(c *cli.Context, opts *copier.Options) error {
	opts.Referrers = c.Bool("referrers")
	opts.ReferrersTypes = listFlag(c, "referrers-type")
	opts.DigestTags = c.Bool("digest-tags")
	if len(opts.ReferrersTypes) > 0 && !opts.Referrers {
		return usageErrorf("--referrers-type needs --referrers")
	}
	if c.Bool("remove-signatures") && (opts.Referrers || opts.DigestTags) {
		return usageErrorf("--remove-signatures contradicts --referrers and --digest-tags, which copy signatures (--referrers-type picks the artifacts to copy)")
	}
	return nil
}

func referrersCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "referrers",
		Usage:     "list the artifacts (signatures, SBOMs, attestations) referring to an image",
		ArgsUsage: "REF",
		Description: `Lists the artifacts whose subject is the image REF (its top-level manifest): their
artifactType, digest, size and annotations, read from each artifact's own manifest. A
registry is asked through its referrers API, else through the referrers tag schema
(sha256-<hex>); an OCI layout or archive through its referrers indexes in index.json.
--recursive also lists what refers to each artifact (e.g. a signature of an SBOM).

Examples:
   imgcopy referrers docker://registry.example/app:1
   imgcopy referrers --recursive --format json oci:/tmp/app:1
   imgcopy referrers --artifact-type application/spdx+json docker://registry.example/app@sha256:0123...`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "print as `FORMAT`: text or json"},
			&cli.StringSliceFlag{Name: "artifact-type", Usage: "list only artifacts of artifactType `TYPE` (repeatable)"},
			&cli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "also list the artifacts referring to each artifact"},
		}, imageFlags("", "image's")...),
		Action: func(c *cli.Context) error { return referrersCommand(c, e) },
	}
}

func referrersCommand(c *cli.Context, e *env) error {
	if err := checkArgs(c, 1, "REF"); err != nil {
		return err
	}
	format := c.String("format")
	if format != "text" && format != "json" {
		return usageErrorf("--format %q: want text or json", format)
	}
	ref, err := parseRef(e, c.Args().First())
	if err != nil {
		return err
	}
	sys, err := systemContext(c, e, "")
	if err != nil {
		return err
	}
	list, err := inspect.ListReferrers(c.Context, ref, sys, inspect.ReferrersOptions{
		ArtifactTypes: listFlag(c, "artifact-type"), Recursive: c.Bool("recursive"),
	})
	if err != nil {
		return err
	}
	if format == "json" {
		return printJSON(e, list)
	}
	return printReferrers(e.stdout, list)
}

// printReferrers prints one line per artifact, indented by depth.
func printReferrers(w io.Writer, list *inspect.ReferrersList) error {
	if len(list.Referrers) == 0 {
		_, err := fmt.Fprintf(w, "No artifacts refer to %s\n", list.Subject)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ARTIFACT TYPE\tDIGEST\tSIZE\tANNOTATIONS\n")
	var walk func(rs []inspect.Referrer, indent string)
	walk = func(rs []inspect.Referrer, indent string) {
		for _, r := range rs {
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", indent, r.ArtifactType, r.Digest, humanBytes(r.Size), annotationsText(r.Annotations))
			walk(r.Referrers, indent+"  ")
		}
	}
	walk(list.Referrers, "")
	return tw.Flush()
}

// annotationsText renders annotations as sorted key=value pairs.
func annotationsText(a map[string]string) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+a[k])
	}
	return strings.Join(parts, ", ")
}

// relatedEvent is one referrer or digest tag in the final --progress json event.
type relatedEvent struct {
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"mediaType"`
	Subject      digest.Digest `json:"subject,omitempty"`
	ArtifactType string        `json:"artifactType,omitempty"`
	Tag          string        `json:"tag,omitempty"`
	Present      bool          `json:"present,omitempty"`
}

func relatedJSON(res *copier.Result) []relatedEvent {
	var out []relatedEvent
	for _, r := range res.Related {
		out = append(out, relatedEvent{Digest: r.Digest, MediaType: r.MIMEType, Subject: r.Subject, ArtifactType: r.ArtifactType, Tag: r.Tag, Present: r.Present})
	}
	return out
}

// relatedSummary is the part of the end-of-copy line about referrers and digest tags.
func relatedSummary(res *copier.Result) string {
	switch {
	case len(res.Related) == 0 && len(res.LeftOut) == 0:
		return ""
	case len(res.Related) == 0:
		return ", referrers or digest tags left out (see the warnings)"
	}
	copied := 0
	for _, r := range res.Related {
		if !r.Present {
			copied++
		}
	}
	s := fmt.Sprintf(", %d referrer(s) and digest tag(s) written, %d already present", copied, len(res.Related)-copied)
	if len(res.LeftOut) > 0 {
		s += " (some left out: see the warnings)"
	}
	return s
}
