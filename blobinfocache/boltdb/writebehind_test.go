package boltdb

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

// manualTimer replaces c's flush timer: fire runs the flush the handle scheduled, as the timer
// would after flushDelay.
type manualTimer struct {
	fn      func()
	started int
}

func useManualTimer(c *cache) *manualTimer {
	m := &manualTimer{}
	c.afterFunc = func(d time.Duration, f func()) func() bool {
		m.fn = f
		m.started++
		return func() bool { return true }
	}
	return m
}

func (m *manualTimer) fire() { m.fn() }

// inFile reports whether a fresh handle on c's file (another process, say) sees the pair d→u.
func inFile(c *cache, d, u digest.Digest) bool {
	return Open(c.path).UncompressedDigest(d) == u
}

func TestRecordsWaitForFlush(t *testing.T) {
	t.Parallel()
	c := newTestCache(t)
	timer := useManualTimer(c)
	d, u := digest.FromString("gz"), digest.FromString("raw")
	c.RecordDigestUncompressedPair(d, u)
	c.RecordKnownLocation("docker", scope, d, types.BICLocationReference{Opaque: "ns/app"})
	if _, err := os.Stat(c.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("records were written at once (stat: %v)", err)
	}
	// The handle itself sees its waiting records, through the same code as stored ones.
	if got := c.UncompressedDigest(d); got != u {
		t.Fatalf("UncompressedDigest before flush = %q", got)
	}
	if got := c.CandidateLocations("docker", scope, u, true); len(got) != 1 || got[0].Location.Opaque != "ns/app" {
		t.Fatalf("candidates before flush: %+v", got)
	}
	if inFile(c, d, u) {
		t.Fatal("a read stored the waiting records")
	}
	if timer.started != 1 {
		t.Fatalf("%d flush timers started, want 1", timer.started)
	}
	mustFlush(t, c)
	if !inFile(c, d, u) {
		t.Fatal("Flush did not store the records")
	}
	if got := Open(c.path).CandidateLocations("docker", scope, u, true); len(got) != 1 || got[0].Digest != d {
		t.Fatalf("stored candidates: %+v", got)
	}
}

func TestFlushAfterDelay(t *testing.T) {
	t.Parallel()
	c := newTestCache(t)
	timer := useManualTimer(c)
	d, u := digest.FromString("gz"), digest.FromString("raw")
	c.RecordDigestUncompressedPair(d, u)
	c.RecordDigestCompressorName(d, types.GzipCompressorName)
	if timer.started != 1 {
		t.Fatalf("%d flush timers started for two records, want 1", timer.started)
	}
	timer.fire()
	if !inFile(c, d, u) {
		t.Fatal("the timer did not store the records")
	}
	c.RecordDigestUncompressedPair(digest.FromString("b"), u)
	if timer.started != 2 {
		t.Fatalf("no new timer for a record after the flush (%d started)", timer.started)
	}
}

func TestFlushWhenBatchFull(t *testing.T) {
	t.Parallel()
	c := newTestCache(t)
	useManualTimer(c)
	c.maxPending = 3
	u := digest.FromString("raw")
	for i := range 3 {
		c.RecordDigestUncompressedPair(dg(i), u)
	}
	for i := range 3 {
		if !inFile(c, dg(i), u) {
			t.Fatalf("record %d not stored when the batch filled", i)
		}
	}
	if len(c.pending) != 0 {
		t.Fatalf("%d records still waiting", len(c.pending))
	}
}

func TestFailedFlushKeepsRecordsInMemory(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(parent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := Open(filepath.Join(parent, "cache.db")).(*cache)
	useManualTimer(c)
	hook := captureWarnings(t)
	d, u := digest.FromString("gz"), digest.FromString("raw")
	c.RecordDigestUncompressedPair(d, u)
	if err := c.Flush(); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("Flush = %v, want the directory error", err)
	}
	if c.fallback == nil || warnings(hook) != 1 {
		t.Fatalf("fallback %v, %d warnings", c.fallback, warnings(hook))
	}
	if got := c.UncompressedDigest(d); got != u {
		t.Fatalf("record lost with the file: UncompressedDigest = %q", got)
	}
}
