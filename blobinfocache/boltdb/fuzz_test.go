package boltdb

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/types"
)

// FuzzCacheFile opens arbitrary bytes as the cache file: every operation must return (from the
// file or from the in-memory fallback) without panicking or hanging, and a recorded pair must be
// readable unless the file was given up between the write and the read.
func FuzzCacheFile(f *testing.F) {
	seed := filepath.Join(f.TempDir(), "seed.db")
	c := Open(seed)
	c.RecordDigestUncompressedPair(dg(1), dg(2))
	c.RecordDigestCompressorName(dg(1), types.GzipCompressorName)
	c.RecordKnownLocation("docker", scope, dg(1), loc(1))
	mustFlush(f, c)
	valid, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte("not a bolt database"))

	// The fallback warning is expected for most inputs; keep the fuzz output readable.
	logger := logrus.StandardLogger()
	oldOut := logger.Out
	logger.SetOutput(io.Discard)
	f.Cleanup(func() { logger.SetOutput(oldOut) })
	f.Fuzz(func(t *testing.T, file []byte) {
		path := filepath.Join(t.TempDir(), "cache.db")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		c := Open(path).(*cache)
		dropPendingAtCleanup(t, c)
		c.lockTimeout = 10 * time.Millisecond
		// A damaged file must not make bbolt loop forever; the fuzzer reports a crash, not a hang.
		watchdog := time.AfterFunc(30*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("hung:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		_ = c.UncompressedDigest(dg(1))
		_ = c.CandidateLocations("docker", scope, dg(2), true)
		c.RecordKnownLocation("docker", scope, dg(3), loc(3))
		c.RecordDigestCompressorName(dg(3), types.ZstdCompressorName)
		// Giving up the file loses what it held (speed, not correctness); apart from that
		// moment a write must be visible to the next read.
		fellBackBefore := c.fallback != nil
		c.RecordDigestUncompressedPair(dg(3), dg(4))
		got := c.UncompressedDigest(dg(3))
		if (fellBackBefore || c.fallback == nil) && got != dg(4) {
			t.Fatalf("recorded pair lost: %q (fallback before %v, after %v)", got, fellBackBefore, c.fallback != nil)
		}
	})
}
