package boltdb

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

const (
	childPathEnv  = "IMGCOPY_BOLTDB_CHILD_PATH"
	processWrites = 20
)

// processDigest is the i-th digest written by writer w ("parent" or "child").
func processDigest(w string, i int) digest.Digest {
	return digest.FromString(fmt.Sprintf("%s-%d", w, i))
}

// writeFromProcess records processWrites pairs and locations as writer w, failing t if the
// handle had to fall back to memory.
func writeFromProcess(t *testing.T, path, w string) {
	t.Helper()
	c := Open(path).(*cache)
	c.lockTimeout = time.Minute // a slow machine must not look like a stuck lock
	for i := range processWrites {
		d := processDigest(w, i)
		c.RecordDigestUncompressedPair(d, digest.FromString("shared"))
		c.RecordKnownLocation("docker", scope, d, types.BICLocationReference{Opaque: w})
		_ = c.CandidateLocations("docker", scope, d, true)
	}
	mustFlush(t, c)
	if c.fallback != nil {
		t.Fatalf("%s fell back to memory", w)
	}
}

// TestTwoProcesses shares one file between this process and a child process writing at the
// same time; afterwards everything both wrote is in the file.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cache.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcessWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), childPathEnv+"="+path)
	out := make(chan error, 1)
	var output []byte
	go func() {
		var err error
		output, err = cmd.CombinedOutput()
		out <- err
	}()
	writeFromProcess(t, path, "parent")
	if err := <-out; err != nil {
		t.Fatalf("child: %v\n%s", err, output)
	}
	c := Open(path)
	for _, w := range []string{"parent", "child"} {
		for i := range processWrites {
			d := processDigest(w, i)
			if got := c.UncompressedDigest(d); got != digest.FromString("shared") {
				t.Fatalf("%s's record %d lost", w, i)
			}
			if got := c.CandidateLocations("docker", scope, d, false); len(got) != 1 || got[0].Location.Opaque != w {
				t.Fatalf("%s's location %d: %+v", w, i, got)
			}
		}
	}
}

// TestChildProcessWriter is the child half of TestTwoProcesses.
func TestChildProcessWriter(t *testing.T) {
	path := os.Getenv(childPathEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestTwoProcesses")
	}
	writeFromProcess(t, path, "child")
}
