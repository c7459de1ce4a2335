// Command imgcopy copies container images between registries, docker-archive tarballs, OCI
// image layouts (directories and tarballs) and plain directories, verifying every byte.
//
//	imgcopy [flags] SRC DST
//	imgcopy inspect|list-tags|delete|manifest-digest|login|logout|version ...
//
// Commands only parse flags and call the library; see README.md for the full reference.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/docker"
	"github.com/imgcopy/imgcopy/types"
)

// Exit codes that commands and tests name; every other code comes from the error's class
// (types.ErrorClass.ExitCode, through exitCode).
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// env holds what the commands use from the outside world, so tests can replace it.
type env struct {
	transports types.TransportList
	copyImage  func(ctx context.Context, dest, src types.ImageReference, opts *copier.Options) (*copier.Result, error)
	openCache  func() types.BlobInfoCache
	checkAuth  func(ctx context.Context, sys *types.SystemContext, registry string) error
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	isTerminal func(f any) bool
	// debug is set from --debug once the flags are parsed.
	debug bool
	// stopProfile ends the --cpuprofile profile, if any.
	stopProfile func() error
}

func defaultEnv() *env {
	return &env{
		transports: transports(),
		copyImage:  copier.Image,
		openCache:  openCache,
		checkAuth:  docker.CheckAuth,
		stdin:      os.Stdin,
		stdout:     os.Stdout,
		stderr:     os.Stderr,
		isTerminal: isTerminal,
	}
}

// isTerminal reports whether f is an *os.File attached to a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, defaultEnv(), os.Args)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, e *env, args []string) int {
	app := newApp(e)
	err := skopeoCommandError(app, args)
	if err == nil {
		err = app.RunContext(ctx, interspersed(app, helpCommand(args)))
	}
	if err == nil {
		return exitCode(ctx, nil)
	}
	if st, ok := err.(exitStatus); ok && ctx.Err() == nil {
		return st.status
	}
	return reportError(e.stderr, ctx, err, e.debug)
}

// usageError marks an error caused by the command line: it is a types.UsageError (ClassUsage,
// exit code 2), with a shorter literal for the many places that build one.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

// Unwrap returns the error as a types.UsageError, which gives it its class.
func (u usageError) Unwrap() error { return types.UsageError{Err: u.err} }

func usageErrorf(format string, args ...any) error {
	return usageError{errors.Errorf(format, args...)}
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	command := ""
	if c != nil && c.Command != nil && c.Command.Name != c.App.Name {
		command = c.Command.Name
	}
	return usageError{skopeoFlagError(command, err)}
}

// setupLogging configures logrus from --debug and --log-level; only the CLI does this.
func setupLogging(c *cli.Context, e *env) error {
	logrus.SetOutput(e.stderr)
	level := c.String("log-level")
	if c.Bool("debug") {
		level, e.debug = "debug", true
	}
	l, err := logrus.ParseLevel(level)
	if err != nil {
		return usageErrorf("invalid --log-level %q (want panic, fatal, error, warn, info, debug or trace)", level)
	}
	logrus.SetLevel(l)
	return nil
}

// checkArgs fails with a usage error unless exactly n arguments were given and none of them
// looks like a flag. interspersed moves every flag before the arguments, so one still among
// them came after "--", which makes it an argument.
func checkArgs(c *cli.Context, n int, names string) error {
	for _, a := range c.Args().Slice() {
		if len(a) > 1 && a[0] == '-' {
			return usageErrorf("unexpected argument %s: expected %s (see %s --help)", a, names, commandPath(c))
		}
	}
	if c.NArg() != n {
		return usageErrorf("expected %s, got %d argument(s) (see %s --help)", names, c.NArg(), commandPath(c))
	}
	return nil
}

// commandPath returns "imgcopy" or "imgcopy COMMAND".
func commandPath(c *cli.Context) string {
	if c.Command == nil || c.Command.Name == c.App.Name {
		return c.App.Name
	}
	return c.App.Name + " " + c.Command.Name
}

// parseRef parses "transport:reference"; any failure is a usage error.
func parseRef(e *env, name string) (types.ImageReference, error) {
	ref, err := e.transports.ParseImageName(name)
	if err != nil {
		return nil, usageError{err}
	}
	return ref, nil
}

func printf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
