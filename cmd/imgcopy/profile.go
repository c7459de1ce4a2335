package main

import (
	"os"
	"runtime/pprof"

	"github.com/pkg/errors"
	"github.com/urfave/cli/v2"
)

// profileFlag is a hidden global flag for measuring the CLI itself (bench/run.sh uses it to
// profile a slow scenario with go tool pprof).
var profileFlag = &cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a CPU profile to `FILE`"}

// startProfile starts the CPU profile requested with --cpuprofile and returns the function
// that stops it; without the flag both are no-ops.
func startProfile(c *cli.Context) (stop func() error, err error) {
	path := c.String(profileFlag.Name)
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, usageErrorf("--cpuprofile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, errors.Wrap(err, "starting the CPU profile")
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
