package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "64M", want: 64 << 20},
		{in: "64mb", want: 64 << 20},
		{in: "10GiB", want: 10 << 30},
		{in: "2T", want: 2 << 40},
		{in: "512k", want: 512 << 10},
		{in: "12B", want: 12},
		{in: "-1", bad: true},
		{in: "1.5G", bad: true},
		{in: "10X", bad: true},
		{in: "G", bad: true},
		{in: "99999999999T", bad: true},
	}
	for _, tc := range cases {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestResumeFlags(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, o *copier.Options)
	}{
		{name: "defaults: beside the blob-info cache", args: nil, check: func(t *testing.T, o *copier.Options) {
			r := o.SourceCtx.Resume
			if r == nil || r != o.DestinationCtx.Resume || r.Dir != filepath.Join(cache, "imgcopy", "resume") ||
				r.MaxAge != types.DefaultResumeMaxAge || r.MaxSize != types.DefaultResumeMaxSize || o.DestinationCtx.UploadChunkSize != 0 {
				t.Errorf("resume %+v, chunk %d", r, o.DestinationCtx.UploadChunkSize)
			}
		}},
		{name: "under --tmpdir", args: []string{"--tmpdir", "/big", "--resume-max-age", "1h", "--resume-max-size", "2GiB", "--upload-chunk-size", "64MiB"}, check: func(t *testing.T, o *copier.Options) {
			r := o.DestinationCtx.Resume
			if r == nil || r.Dir != "/big/imgcopy-resume" || r.MaxAge != time.Hour || r.MaxSize != 2<<30 || o.DestinationCtx.UploadChunkSize != 64<<20 {
				t.Errorf("resume %+v, chunk %d", r, o.DestinationCtx.UploadChunkSize)
			}
		}},
		{name: "no resume", args: []string{"--no-resume", "--upload-chunk-size", "1M"}, check: func(t *testing.T, o *copier.Options) {
			if o.SourceCtx.Resume != nil || o.DestinationCtx.Resume != nil || o.DestinationCtx.UploadChunkSize != 1<<20 {
				t.Errorf("resume %+v %+v", o.SourceCtx.Resume, o.DestinationCtx.Resume)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if code := h.run(append(tc.args, "dir:/a", "oci:/b")...); code != exitOK {
				t.Fatalf("exit %d, stderr %s", code, h.stderr.String())
			}
			tc.check(t, h.opts)
		})
	}
	for _, bad := range [][]string{{"--upload-chunk-size", "big"}, {"--resume-max-size", "0"}, {"--resume-max-age", "-1h"}} {
		h := newHarness(t)
		if code := h.run(append(bad, "dir:/a", "oci:/b")...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

// TestResumeInSummary: the summary line and the JSON "done" object say how much was resumed
// and how many blobs had to be copied again.
func TestResumeInSummary(t *testing.T) {
	res := &copier.Result{ManifestDigest: testDigest, BlobsCopied: 1, BytesCopied: 256 << 20, BytesResumed: 150 << 20, ResumesDiscarded: 1}
	for _, mode := range []string{"plain", "json"} {
		h := newHarness(t)
		h.env.copyImage = func(ctx context.Context, _, _ types.ImageReference, opts *copier.Options) (*copier.Result, error) {
			opts.Progress(copier.ProgressEvent{Kind: copier.EventBlobStarted, Digest: "sha256:aa", Size: 256 << 20, Resumed: 150 << 20})
			return res, nil
		}
		if code := h.run("--progress", mode, "dir:/a", "oci:/b"); code != exitOK {
			t.Fatalf("exit %d: %s", code, h.stderr.String())
		}
		out := h.stdout.String()
		if mode == "plain" {
			for _, want := range []string{"resuming at 150.0 MiB", "resumed 150.0 MiB", "1 blob(s) copied again"} {
				if !strings.Contains(out, want) {
					t.Errorf("plain output %q lacks %q", out, want)
				}
			}
			continue
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var started, done map[string]any
		json.Unmarshal([]byte(lines[0]), &started)
		json.Unmarshal([]byte(lines[len(lines)-1]), &done)
		if started["resumed"] != float64(150<<20) || done["bytesResumed"] != float64(150<<20) || done["resumesDiscarded"] != float64(1) {
			t.Errorf("json: started %v, done %v", started, done)
		}
	}
}
