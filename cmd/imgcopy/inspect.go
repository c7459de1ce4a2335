package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"text/template"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
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
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "print the summary (with --config the config) with Go `TEMPLATE` instead of JSON; json prints JSON"},
			&cli.BoolFlag{Name: "no-tags", Aliases: []string{"n"}, Usage: "do not list the repository's tags (RepoTags)"},
		}, imageFlags("", "image's")...),
		Action: func(c *cli.Context) error { return inspectCommand(c, e) },
	}
}

func inspectCommand(c *cli.Context, e *env) error {
	if err := checkArgs(c, 1, "REF"); err != nil {
		return err
	}
	tmpl, err := formatTemplate(c.String("format"), c.Bool("raw"))
	if err != nil {
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
		if tmpl != nil {
			// As skopeo, the template sees the config as an OCI image config
			// ({{.Architecture}}, {{.OS}}, {{.Config.Labels}}, {{.History}}).
			var config imgspecv1.Image
			if err := json.Unmarshal(img.Config, &config); err != nil {
				return errors.Wrapf(err, "parsing the config of %s", c.Args().First())
			}
			return printSummary(e, tmpl, &config)
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

// isJSONFormat matches the --format values skopeo (containers/common's report package)
// treats as "print JSON": json and {{json .}}.
var isJSONFormat = regexp.MustCompile(`^\s*(json|\{\{\s*json\s*\.?\s*\}\})\s*$`)

// templateFuncs are the functions --format templates may use besides Go's built-ins, as in
// skopeo's templates: {{json .Labels}}, {{join .RepoTags ","}}, {{lower .Os}}.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
}

// formatTemplate parses --format; nil means JSON output (no --format, or skopeo's "json").
func formatTemplate(format string, raw bool) (*template.Template, error) {
	if format == "" || isJSONFormat.MatchString(format) {
		if format != "" && raw {
			return nil, usageErrorf("--format cannot be combined with --raw")
		}
		return nil, nil
	}
	if raw {
		return nil, usageErrorf("--format cannot be combined with --raw")
	}
	t, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, usageError{errors.Wrap(err, "--format")}
	}
	return t, nil
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
