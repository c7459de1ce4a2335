package main

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/pkg/errors"

	"github.com/urfave/cli/v2"

	syncer "github.com/imgcopy/imgcopy/sync"
)

// exitChanged is the exit status of a sync with --detailed-exitcode that copied or pruned
// something (with --dry-run: would), so that a script run from cron can tell it from a run
// that found the mirror up to date (0); failures keep their own codes.
const exitChanged = 10

var detailedExitFlag = &cli.BoolFlag{
	Name:  "detailed-exitcode",
	Usage: "exit 10 when the sync copied or pruned anything (with --dry-run: would), 0 when everything was up to date (failures keep their codes)",
}

// exitStatus is a command's outcome that is no failure but has an exit status of its own;
// run returns the status without printing anything. It must not implement cli.ExitCoder,
// which would make the cli package exit the process itself.
type exitStatus struct{ status int }

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(e.status) }

// changedStatus returns exitStatus{exitChanged} when --detailed-exitcode is set and rep
// copied or pruned anything (a plan: would), else nil.
func changedStatus(c *cli.Context, rep *syncer.Report) error {
	if !c.Bool(detailedExitFlag.Name) || rep == nil {
		return nil
	}
	n := rep.Counts
	if n[syncer.ActionCopied]+n[syncer.ActionPruned]+n[syncer.ActionCopy]+n[syncer.ActionPrune] > 0 {
		return exitStatus{exitChanged}
	}
	return nil
}

// checkOutputFile fails with a usage error, before a sync starts, when the file a flag names
// (--report, --digestfile) could not be written at its end: a directory, a file that cannot
// be opened for writing, or a directory that does not exist. Found after hours of copying,
// it was a failure of the whole run, with the exit code of "not found".
func checkOutputFile(flag, path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return usageErrorf("--%s %s: is a directory", flag, path)
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY, 0) // not truncated: it is written at the end
		if err != nil {
			return usageError{errors.Wrapf(err, "--%s", flag)}
		}
		return f.Close()
	}
	if dir, err := os.Stat(filepath.Dir(path)); err != nil || !dir.IsDir() {
		return usageErrorf("--%s %s: directory %s does not exist", flag, path, filepath.Dir(path))
	}
	return nil
}
