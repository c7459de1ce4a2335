package boltdb

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// holdShared keeps the file open read-only, with bbolt's shared lock, until the test ends:
// a read-write transaction of c cannot start meanwhile.
func holdShared(t *testing.T, path string) func() {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := false
	release := func() {
		if !done {
			done = true
			_ = db.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// A query that no waiting record concerns is answered from the file in a read-only
// transaction: it does not need the exclusive lock that applying the records takes.
func TestLookupUnconcernedByPendingIsReadOnly(t *testing.T) {
	t.Parallel()
	c := newTestCache(t)
	useManualTimer(c)
	c.lockTimeout = 50 * time.Millisecond
	c.RecordKnownLocation("docker", scope, dg(1), loc(1))
	mustFlush(t, c)
	c.RecordKnownLocation("docker", scope, dg(2), loc(2)) // waits
	release := holdShared(t, c.path)
	got := c.CandidateLocations("docker", scope, dg(1), false)
	if c.fallback != nil {
		t.Fatal("the query waited for the exclusive lock and fell back to memory")
	}
	if len(got) != 1 || got[0].Location != loc(1) {
		t.Fatalf("candidates of the stored digest: %+v", got)
	}
	release()
	got = c.CandidateLocations("docker", scope, dg(2), false)
	if c.fallback != nil || len(got) != 1 || got[0].Location != loc(2) {
		t.Fatalf("candidates of the waiting record: %+v (fallback %v)", got, c.fallback != nil)
	}
}

// A waiting record stored under a digest the query reaches only through the file (a
// substitute sharing the uncompressed digest) still counts.
func TestLookupSeesPendingSubstitutes(t *testing.T) {
	t.Parallel()
	c := newTestCache(t)
	useManualTimer(c)
	u := dg(100)
	c.RecordDigestUncompressedPair(dg(1), u)
	c.RecordKnownLocation("docker", scope, dg(1), loc(1))
	mustFlush(t, c)
	c.RecordDigestUncompressedPair(dg(4), u) // waits: dg(4) is another compression of u
	c.RecordKnownLocation("docker", scope, dg(4), loc(4))
	got := c.CandidateLocations("docker", scope, dg(1), true)
	var digests []string
	for _, g := range got {
		digests = append(digests, g.Digest.String())
	}
	if len(got) != 2 {
		t.Fatalf("candidates %v, want dg(1) and its waiting substitute dg(4)", digests)
	}
	if c.UncompressedDigest(dg(4)) != u {
		t.Fatal("UncompressedDigest misses the waiting pair")
	}
	if got := c.CandidateLocations("docker", scope, dg(7), true); len(got) != 0 {
		t.Fatalf("candidates of an unknown digest: %+v", got)
	}
}
