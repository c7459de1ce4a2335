package main

import (
	"bytes"
	"encoding/json"
	"text/template"

	"github.com/pkg/errors"
	"github.com/urfave/cli/v2"

	"github.com/imgcopy/imgcopy/inspect"
)

func inspectCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show an image's digest, platform, labels, layers and tags as JSON",
		ArgsUsage: "REF",
		Description: `Prints a JSON summary of the image REF like skopeo inspect (Name, Digest, RepoTags, Created,
DockerVersion, Labels, Architecture, Os, Layers, LayersData, Env). For a multi-platform
image the summary describes the image for the running platform (see --override-arch), and
Digest is the index's digest. --raw prints the top-level manifest exactly as stored;
--config prints the image config (exact bytes with --raw).

For a layout or archive named by its path alone that holds several images (a bundle), it
prints {"Store": ..., "Images": [...]} instead: each image's name, reference, digest, type
and platforms.

Examples:
   imgcopy inspect oci:examples/hello:latest
   imgcopy inspect --raw docker://busybox:latest
   imgcopy inspect --config --raw oci:examples/hello:latest
   imgcopy inspect --format '{{.Digest}} {{.Architecture}}' docker-archive:/tmp/hello.tar
   imgcopy inspect oci-archive:/tmp/bundle.tar
   imgcopy --override-arch arm64 inspect docker://alpine:3`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "raw", Usage: "print the manifest (or with --config the config) exactly as stored"},
			&cli.BoolFlag{Name: "config", Usage: "print the image config instead of the summary"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "print the summary with Go `TEMPLATE` instead of JSON"},
			&cli.BoolFlag{Name: "no-tags", Aliases: []string{"n"}, Usage: "do not list the repository's tags (RepoTags)"},
		}, imageFlags("", "image's")...),
		Action: func(c *cli.Context) error { return inspectCommand(c, e) },
	}
}

func inspectCommand(c *cli.Context, e *env) error {
	if err := checkArgs(c, 1, "REF"); err != nil {
		return err
	}
	var tmpl *template.Template
	if f := c.String("format"); f != "" {
		if c.Bool("raw") || c.Bool("config") {
			return usageErrorf("--format cannot be combined with --raw or --config")
		}
		t, err := template.New("format").Parse(f)
		if err != nil {
			return usageError{errors.Wrap(err, "--format")}
		}
		tmpl = t
	}
	ref, err := parseRef(e, c.Args().First())
	if err != nil {
		return err
	}
	sys, err := systemContext(c, e, "")
	if err != nil {
		return err
	}
	if !c.Bool("raw") && !c.Bool("config") {
		store, ok, err := inspect.InspectStore(c.Context, ref, sys)
		if err != nil {
			return err
		}
		if ok {
			return printSummary(e, tmpl, store)
		}
	}
	switch {
	case c.Bool("config"):
		img, err := inspect.Read(c.Context, ref, sys)
		if err != nil {
			return err
		}
		return printJSONBytes(e, img.Config, c.Bool("raw"))
	case c.Bool("raw"):
		b, _, err := inspect.RawManifest(c.Context, ref, sys)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(b)
		return err
	}
	out, err := inspect.Inspect(c.Context, ref, sys, inspect.Options{NoTags: c.Bool("no-tags")})
	if err != nil {
		return err
	}
	return printSummary(e, tmpl, out)
}

// printSummary prints out with the --format template, or as indented JSON.
func printSummary(e *env, tmpl *template.Template, out any) error {
	if tmpl != nil {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, out); err != nil {
			return errors.Wrap(err, "executing --format template")
		}
		buf.WriteString("\n")
		_, err := e.stdout.Write(buf.Bytes())
		return err
	}
	return printJSON(e, out)
}

// printJSONBytes prints b exactly (raw) or indented.
func printJSONBytes(e *env, b []byte, raw bool) error {
	if raw {
		_, err := e.stdout.Write(b)
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "    "); err != nil {
		return errors.Wrap(err, "formatting config")
	}
	buf.WriteString("\n")
	_, err := e.stdout.Write(buf.Bytes())
	return err
}

func printJSON(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(append(b, '\n'))
	return err
}
