package main

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/imgcopy/imgcopy/blobinfocache/boltdb"
	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

// resumeFlags are the copy flags of resuming interrupted copies (issue 17).
func resumeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "no-resume", Usage: "neither keep nor continue the transfers of an interrupted copy"},
		&cli.DurationFlag{Name: "resume-max-age", Value: types.DefaultResumeMaxAge, Usage: "prune kept partial downloads and upload records not written for `DURATION`"},
		&cli.StringFlag{Name: "resume-max-size", Value: "10GiB", Usage: "keep at most `SIZE` of partial downloads (oldest pruned first)"},
		&cli.StringFlag{Name: "upload-chunk-size", Usage: "upload blobs to a registry in chunks of `SIZE` (e.g. 64MiB), recording the progress after each", DefaultText: "each blob in one request"},
	}
}

// resumeDir is where partial downloads and upload records are kept: under --tmpdir when
// given, else beside the blob-info cache ($XDG_CACHE_HOME/imgcopy/resume). "" when neither
// is available.
func resumeDir(c *cli.Context) string {
	if tmp := c.String("tmpdir"); tmp != "" {
		return filepath.Join(tmp, "imgcopy-resume")
	}
	cache, err := boltdb.DefaultPath()
	if err != nil {
		logrus.WithError(err).Debug("no directory for partial downloads; interrupted registry transfers will start over")
		return ""
	}
	return filepath.Join(filepath.Dir(cache), "resume")
}

// applyResumeFlags sets the resume options of both sides and the upload chunk size.
func applyResumeFlags(c *cli.Context, opts *copier.Options) error {
	chunk, err := parseSize(c.String("upload-chunk-size"))
	if err != nil {
		return usageErrorf("--upload-chunk-size: %v", err)
	}
	opts.DestinationCtx.UploadChunkSize = chunk
	if c.Bool("no-resume") {
		return nil
	}
	maxSize, err := parseSize(c.String("resume-max-size"))
	if err != nil {
		return usageErrorf("--resume-max-size: %v", err)
	}
	maxAge := c.Duration("resume-max-age")
	if maxAge <= 0 || maxSize <= 0 {
		return usageErrorf("--resume-max-age and --resume-max-size must be positive (use --no-resume to turn resuming off)")
	}
	r := &types.ResumeOptions{Dir: resumeDir(c), MaxAge: maxAge, MaxSize: maxSize}
	opts.SourceCtx.Resume, opts.DestinationCtx.Resume = r, r
	return nil
}

// parseSize reads a byte count: a number, optionally with a K, M, G or T suffix (powers of
// 1024; "KiB", "KB" and "k" are read alike). "" is 0.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num := strings.TrimRight(s, "BbiKkMmGgTt")
	unit := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s[len(num):]), "B"), "I")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if !ok || err != nil || n < 0 || n > (1<<62)>>sh {
		return 0, errors.Errorf("%q is not a size (want bytes, or a number with K, M, G or T)", s)
	}
	return n << sh, nil
}

// resumeSummary is the part of the summary line about resumed transfers ("" when none).
func resumeSummary(res *copier.Result) string {
	var s string
	if res.BytesResumed > 0 {
		s += ", resumed " + humanBytes(res.BytesResumed)
	}
	if res.ResumesDiscarded > 0 {
		s += ", " + strconv.Itoa(res.ResumesDiscarded) + " blob(s) copied again because data kept from an interrupted copy did not verify"
	}
	return s
}
