package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/pkg/errors"
	"github.com/urfave/cli/v2"

	syncer "github.com/imgcopy/imgcopy/sync"
	"github.com/imgcopy/imgcopy/types"
)

func syncCmd(e *env) *cli.Command {
	return &cli.Command{
		Name:      "sync",
		Usage:     "mirror many images: every tag of a repository, a YAML list of sources, a layout or archive",
		ArgsUsage: "SRC DST | --config FILE DST",
		Description: `Copies every image SRC selects into the store DST, skipping those DST already has. SRC is a
registry repository (docker://HOST/REPO: every tag, or those --tag, --include, --exclude,
--semver and --newest select), one image (docker://HOST/REPO:TAG), or a local store holding
several images (oci:DIR, oci-archive:FILE, docker-archive:FILE, dir:DIR). With --config, the
sources come from a YAML file in skopeo sync's format (with imgcopy's extensions; see the
README). DST is docker://HOST[/PREFIX], oci:DIR, oci-archive:FILE, docker-archive:FILE or
dir:DIR. As with skopeo sync, an image keeps the last element of its repository path and its
tag (--scoped keeps the registry and the whole path). skopeo's form --src TYPE --dest TYPE
SOURCE DESTINATION (without transport prefixes) is accepted too.

The sync first plans: it lists the sources and compares digests with HEAD requests, so that an
unchanged image costs no manifest pull. --dry-run prints that plan. Then it copies several
images at once (--image-parallel) sharing one budget of blob transfers, keeps going when an
image fails (--fail-fast stops), and exits non-zero when any failed; --report writes every
image's outcome as JSON.

With --referrers and --digest-tags each image brings its signatures, SBOMs and attestations
(and cosign's sha256-<hex>.sig tags), which are then not synced as images of their own; an
up-to-date image whose artifacts changed at the source gets the missing ones (compared from
listings, without pulling the image).

Examples:
   imgcopy sync docker://quay.io/team/app docker://registry.example:5000/mirror
   imgcopy sync --include '^v1\.' --exclude -rc --dry-run docker://quay.io/team/app docker://registry.example/mirror
   imgcopy sync --config sync.yaml --report report.json docker://registry.example/mirror
   imgcopy sync --shard 0/3 --prune --config sync.yaml docker://registry.example/mirror
   imgcopy sync docker://registry.example/team/app oci:/srv/bundle
   imgcopy sync --referrers --digest-tags docker://quay.io/team/app docker://registry.example/mirror
   imgcopy sync --src docker --dest docker registry.example/busybox localhost:5000/mirror`,
		Flags:  syncFlags(),
		Action: func(c *cli.Context) error { return syncCommand(c, e) },
	}
}

// syncFlags are the copy flags that apply to every image, plus the sync's own.
func syncFlags() []cli.Flag {
	var flags []cli.Flag
	for _, f := range copyFlags() {
		if n := f.Names()[0]; n != "additional-tag" && n != "digestfile" {
			flags = append(flags, f)
		}
	}
	return append(flags,
		&cli.StringFlag{Name: "config", Usage: "read the sources from YAML `FILE` (skopeo sync's format, with imgcopy's extensions)"},
		&cli.StringFlag{Name: "src", Aliases: []string{"s"}, Usage: "skopeo's form: SRC is of `TYPE` docker, oci, dir or yaml, without a transport prefix"},
		&cli.StringFlag{Name: "dest", Aliases: []string{"d"}, Usage: "skopeo's form: DST is of `TYPE` docker, oci or dir, without a transport prefix"},
		&cli.StringSliceFlag{Name: "tag", Usage: "sync this tag or digest of SRC (repeatable); it must exist"},
		&cli.StringSliceFlag{Name: "include", Usage: "sync the tags matching regular expression `REGEX` (repeatable)"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "leave out the tags matching regular expression `REGEX` (repeatable)"},
		&cli.StringFlag{Name: "semver", Usage: "sync the tags that are versions in `RANGE`, e.g. '>=1.20 <2'"},
		&cli.IntFlag{Name: "newest", Usage: "sync only the `N` highest versions among the selected tags"},
		&cli.StringFlag{Name: "dest-repo", Usage: "name the destination repository with `TEMPLATE` ({{.Registry}}, {{.Repository}}, {{.Name}})"},
		&cli.BoolFlag{Name: "scoped", Usage: "keep the source registry and whole repository path in destination names, as skopeo sync --scoped"},
		&cli.StringFlag{Name: "append-suffix", Usage: "append `SUFFIX` to every destination tag"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print the plan (and check that every literal tag exists); copy nothing"},
		detailedExitFlag,
		&cli.StringFlag{Name: "output", Value: "text", Usage: "with --dry-run, print the plan as `FORMAT`: text or json"},
		&cli.BoolFlag{Name: "keep-going", Usage: "go on after an image fails (the default; accepted for skopeo's scripts)"},
		&cli.BoolFlag{Name: "fail-fast", Usage: "stop at the first image that fails"},
		&cli.IntFlag{Name: "image-parallel", Value: syncer.DefaultImageParallel, Usage: "copy `N` images at once"},
		&cli.StringFlag{Name: "report", Usage: "write the outcome of every image as JSON to `FILE`"},
		&cli.StringFlag{Name: "digestfile", Usage: "write the digest and name of every synced image, one per line, to `FILE`"},
		&cli.StringFlag{Name: "shard", Usage: "do only share `K/N` of the sync (0 <= K < N), split by destination repository and tag"},
		&cli.BoolFlag{Name: "prune", Usage: "delete tags in the destination repositories this sync maps to that the sources no longer select"},
		&cli.IntFlag{Name: "rate-limit-min", Value: syncer.DefaultRateLimitMin, Usage: "pause manifest pulls while a registry reports fewer than `N` left (0: never)"},
		&cli.IntFlag{Name: "requests-per-registry", Value: syncer.DefaultRequestsPerRegistry, Usage: "send at most `N` requests at once to one registry (0: no limit)"},
	)
}

// syncCommand maps the flags onto syncer.Options, plans, and prints the plan (--dry-run) or
// runs it.
func syncCommand(c *cli.Context, e *env) error {
	opts, err := syncOptions(c, e)
	if err != nil {
		return err
	}
	if err := firstErr(checkOutputFile("report", c.String("report")), checkOutputFile("digestfile", c.String("digestfile"))); err != nil {
		return err
	}
	out, err := newSyncProgress(e, c.String("progress"), c.Bool("quiet"))
	if err != nil {
		return err
	}
	if c.Bool("dry-run") {
		if o := c.String("output"); o != "text" && o != "json" {
			return usageErrorf("--output %q: want text or json", o)
		}
	}
	opts.Progress = out.event
	plan, err := syncer.NewPlan(c.Context, opts)
	if err != nil {
		return err
	}
	if c.Bool("dry-run") {
		rep := plan.Report()
		if err := printPlan(e, plan, rep, c.String("output")); err != nil {
			return err
		}
		return firstErr(writeReport(c.String("report"), rep), rep.Err(), changedStatus(c, rep))
	}
	rep, runErr := plan.Run(c.Context)
	if rep != nil {
		out.finish(rep)
		err = firstErr(writeReport(c.String("report"), rep), writeDigestFile(c.String("digestfile"), rep))
	}
	return firstErr(runErr, err, reportErr(rep), changedStatus(c, rep))
}

func reportErr(rep *syncer.Report) error {
	if rep == nil {
		return nil
	}
	return rep.Err()
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncOptions maps the flags onto syncer.Options, with the sources.
func syncOptions(c *cli.Context, e *env) (syncer.Options, error) {
	copyOpts, err := copyOptions(c, e)
	if err != nil {
		return syncer.Options{}, err
	}
	copyOpts.BlobInfoCache = e.openCache()
	opts := syncer.Options{
		Transports: e.transports, Copy: *copyOpts,
		Scoped: c.Bool("scoped"), AppendSuffix: c.String("append-suffix"),
		ImageParallel: c.Int("image-parallel"), Prune: c.Bool("prune"), FailFast: c.Bool("fail-fast"),
		RateLimitMin: c.Int("rate-limit-min"), RequestsPerRegistry: c.Int("requests-per-registry"),
	}
	if opts.ImageParallel < 1 || opts.RateLimitMin < 0 || opts.RequestsPerRegistry < 0 {
		return opts, usageErrorf("--image-parallel must be at least 1, --rate-limit-min and --requests-per-registry not negative")
	}
	if c.Bool("fail-fast") && c.Bool("keep-going") {
		return opts, usageErrorf("--fail-fast and --keep-going contradict each other")
	}
	if s := c.String("shard"); s != "" {
		if opts.Shard, err = syncer.ParseShard(s); err != nil {
			return opts, usageError{err}
		}
	}
	opts.Sources, opts.Destination, err = syncSources(c, opts.Copy.SourceCtx)
	return opts, err
}

// syncSources returns the sources and the destination store from the arguments: SRC DST,
// --config FILE DST, or skopeo's --src TYPE --dest TYPE SOURCE DESTINATION.
func syncSources(c *cli.Context, srcCtx *types.SystemContext) ([]syncer.Source, string, error) {
	args := c.Args().Slice()
	config := c.String("config")
	if c.String("src") == "yaml" {
		if config != "" || len(args) != 2 {
			return nil, "", usageErrorf("--src yaml takes the YAML file and DST as arguments (or use --config FILE DST)")
		}
		config, args = args[0], args[1:]
	}
	want, names := 2, "SRC and DST"
	if config != "" {
		want, names = 1, "DST (with --config)"
	}
	if err := checkArgs(c, c.NArg(), names); err != nil { // flags after the arguments
		return nil, "", err
	}
	if len(args) != want {
		return nil, "", usageErrorf("expected %s, got %d argument(s) (see imgcopy sync --help)", names, len(args))
	}
	dst, err := withTransport(c.String("dest"), args[len(args)-1], "dest", []string{"docker", "oci", "dir"})
	if err != nil {
		return nil, "", err
	}
	if config != "" {
		if hasFilterFlags(c) {
			return nil, "", usageErrorf("--tag, --include, --exclude, --semver, --newest and --dest-repo apply to SRC; with --config use the file's keys")
		}
		srcs, err := readSyncConfig(config, srcCtx)
		return srcs, dst, err
	}
	src, err := withTransport(c.String("src"), args[0], "src", []string{"docker", "oci", "dir"})
	if err != nil {
		return nil, "", err
	}
	s, err := cliSource(c, src)
	return []syncer.Source{s}, dst, err
}

// withTransport adds the transport of skopeo's --src/--dest TYPE to a name given without one.
func withTransport(typ, name, flag string, allowed []string) (string, error) {
	switch {
	case typ == "":
		return name, nil
	case !contains(allowed, typ):
		return "", usageErrorf("--%s %q: want %s", flag, typ, strings.Join(allowed, ", "))
	case typ == "docker":
		return "docker://" + strings.TrimPrefix(name, "docker://"), nil
	}
	return typ + ":" + strings.TrimPrefix(name, typ+":"), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasFilterFlags(c *cli.Context) bool {
	for _, f := range []string{"tag", "include", "exclude", "semver", "newest", "dest-repo"} {
		if c.IsSet(f) {
			return true
		}
	}
	return false
}

func readSyncConfig(path string, srcCtx *types.SystemContext) ([]syncer.Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError{errors.Wrap(err, "--config")}
	}
	defer f.Close()
	return syncer.ReadConfig(f, path, srcCtx)
}

// cliSource builds the source of the SRC DST form from the selection flags.
func cliSource(c *cli.Context, name string) (syncer.Source, error) {
	s := syncer.Source{Name: name, Tags: listFlag(c, "tag")}
	var f syncer.TagFilter
	var err error
	if f.Include, err = regexps(c.StringSlice("include"), "include"); err != nil {
		return s, err
	}
	if f.Exclude, err = regexps(c.StringSlice("exclude"), "exclude"); err != nil {
		return s, err
	}
	if r := c.String("semver"); r != "" {
		if f.Semver, err = semver.NewConstraint(r); err != nil {
			return s, usageErrorf("--semver %q: %v", r, err)
		}
	}
	if f.Newest = c.Int("newest"); f.Newest < 0 || (c.IsSet("newest") && f.Newest == 0) {
		return s, usageErrorf("--newest must be at least 1")
	}
	if len(f.Include)+len(f.Exclude) > 0 || f.Semver != nil || f.Newest > 0 {
		s.Filters = []syncer.TagFilter{f}
	}
	if t := c.String("dest-repo"); t != "" {
		if s.Destination, err = syncer.ParseRepoTemplate(t); err != nil {
			return s, usageError{errors.Wrap(err, "--dest-repo")}
		}
	}
	return s, nil
}

func regexps(pats []string, flag string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range pats {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, usageErrorf("--%s %q: %v", flag, p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// writeReport writes rep as indented JSON to path ("" writes nothing).
func writeReport(path string, rep *syncer.Report) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return errors.Wrap(os.WriteFile(path, append(b, '\n'), 0o644), "writing --report")
}

// writeDigestFile writes "DIGEST DESTINATION" for every image the destination now has, as
// skopeo sync --digestfile does for the images it copied.
func writeDigestFile(path string, rep *syncer.Report) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	for _, r := range rep.Images {
		if (r.Action == syncer.ActionCopied || r.Action == syncer.ActionUpToDate) && r.Digest != "" {
			b.WriteString(r.Digest.String() + " " + r.Destination + "\n")
		}
	}
	return errors.Wrap(os.WriteFile(path, []byte(b.String()), 0o644), "writing --digestfile")
}
