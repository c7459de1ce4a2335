// Package suite is the conformance suite every types.BlobInfoCache implementation runs, modelled
// on containers/image pkg/blobinfocache/internal/test. It is imported only from _test.go files.
package suite

import (
	"fmt"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/blobinfocache/internal/prioritize"
	"github.com/imgcopy/imgcopy/types"
)

const (
	digestUnknown      = digest.Digest("sha256:1111111111111111111111111111111111111111111111111111111111111111")
	digestUncompressed = digest.Digest("sha256:2222222222222222222222222222222222222222222222222222222222222222")
	digestCompressedA  = digest.Digest("sha256:3333333333333333333333333333333333333333333333333333333333333333")
	digestCompressedB  = digest.Digest("sha256:4444444444444444444444444444444444444444444444444444444444444444")
	digestUnrelated    = digest.Digest("sha256:5555555555555555555555555555555555555555555555555555555555555555")
	digestOtherUncomp  = digest.Digest("sha256:6666666666666666666666666666666666666666666666666666666666666666")

	transportA = "docker"
	transportB = "oci"
)

// Run runs the suite; newCache returns a fresh, empty cache each time it is called.
func Run(t *testing.T, newCache func(t *testing.T) types.BlobInfoCache) {
	cases := []struct {
		name string
		fn   func(t *testing.T, c types.BlobInfoCache)
	}{
		{"UncompressedDigest", testUncompressedDigest},
		{"RecordDigestUncompressedPairTwice", testRecordPairTwice},
		{"PairReplaced", testPairReplaced},
		{"EmptyDigestsIgnored", testEmptyDigestsIgnored},
		{"KnownLocationsSeparated", testKnownLocationsSeparated},
		{"RecordAgainMovesToFront", testRecordAgainMovesToFront},
		{"ForgetKnownLocation", testForgetKnownLocation},
		{"CandidatesWithSubstitution", testCandidatesWithSubstitution},
		{"CandidatesCompressorName", testCandidatesCompressorName},
		{"CandidatesLastSeen", testCandidatesLastSeen},
		{"CandidatesBounded", testCandidatesBounded},
		{"Concurrent", testConcurrent},
		{"ManifestMapping", testManifestMapping},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newCache(t))
		})
	}
}

func testUncompressedDigest(t *testing.T, c types.BlobInfoCache) {
	if got := c.UncompressedDigest(digestUnknown); got != "" {
		t.Fatalf("unknown digest: got %q", got)
	}
	c.RecordDigestUncompressedPair(digestCompressedA, digestUncompressed)
	c.RecordDigestUncompressedPair(digestCompressedB, digestUncompressed)
	c.RecordDigestUncompressedPair(digestUnrelated, digestUnrelated)
	c.RecordDigestCompressorName(digestOtherUncomp, types.UncompressedCompressorName)
	for _, tc := range []struct {
		name   string
		in     digest.Digest
		expect digest.Digest
	}{
		{"compressed A", digestCompressedA, digestUncompressed},
		{"compressed B", digestCompressedB, digestUncompressed},
		{"implied by being a target", digestUncompressed, digestUncompressed},
		{"recorded as its own pair", digestUnrelated, digestUnrelated},
		{"recorded as uncompressed compressor", digestOtherUncomp, digestOtherUncomp},
		{"still unknown", digestUnknown, ""},
	} {
		if got := c.UncompressedDigest(tc.in); got != tc.expect {
			t.Errorf("%s: UncompressedDigest(%s) = %q, want %q", tc.name, tc.in, got, tc.expect)
		}
	}
}

func testRecordPairTwice(t *testing.T, c types.BlobInfoCache) {
	for i := range 2 { // redundant writes must not break anything
		c.RecordDigestUncompressedPair(digestCompressedA, digestUncompressed)
		c.RecordDigestUncompressedPair(digestCompressedB, digestUncompressed)
		c.RecordDigestUncompressedPair(digestUncompressed, digestUncompressed)
		for _, d := range []digest.Digest{digestCompressedA, digestCompressedB, digestUncompressed} {
			if got := c.UncompressedDigest(d); got != digestUncompressed {
				t.Fatalf("round %d: UncompressedDigest(%s) = %q", i, d, got)
			}
		}
	}
}

func testPairReplaced(t *testing.T, c types.BlobInfoCache) {
	scope := types.BICTransportScope{Opaque: "reg"}
	c.RecordDigestUncompressedPair(digestCompressedA, digestUncompressed)
	c.RecordDigestUncompressedPair(digestCompressedA, digestOtherUncomp)
	if got := c.UncompressedDigest(digestCompressedA); got != digestOtherUncomp {
		t.Fatalf("after replacement: %q", got)
	}
	c.RecordKnownLocation(transportA, scope, digestCompressedA, loc("a"))
	c.RecordKnownLocation(transportA, scope, digestUncompressed, loc("u"))
	// A no longer shares content with digestUncompressed.
	assertCandidates(t, c.CandidateLocations(transportA, scope, digestUncompressed, true), []want{{digestUncompressed, "u"}})
}

func testEmptyDigestsIgnored(t *testing.T, c types.BlobInfoCache) {
	scope := types.BICTransportScope{Opaque: "reg"}
	c.RecordDigestUncompressedPair("", digestUncompressed)
	c.RecordDigestUncompressedPair(digestCompressedA, "")
	c.RecordDigestCompressorName("", types.GzipCompressorName)
	c.RecordKnownLocation(transportA, scope, "", loc("x"))
	if got := c.UncompressedDigest(digestCompressedA); got != "" {
		t.Fatalf("got %q", got)
	}
	if got := c.UncompressedDigest(digestUncompressed); got != "" {
		t.Fatalf("got %q", got)
	}
	assertCandidates(t, c.CandidateLocations(transportA, scope, "", true), nil)
}

func testKnownLocationsSeparated(t *testing.T, c types.BlobInfoCache) {
	for range 2 { // redundant writes must not break anything
		for _, tr := range []string{transportA, transportB} {
			for _, scopeName := range []string{"A", "B"} {
				scope := types.BICTransportScope{Opaque: scopeName}
				for _, d := range []digest.Digest{digestCompressedA, digestCompressedB} {
					prefix := tr + scopeName + string(d)[len(d)-1:]
					c.RecordKnownLocation(tr, scope, d, loc(prefix+"2"))
					c.RecordKnownLocation(tr, scope, d, loc(prefix+"1"))
					got := c.CandidateLocations(tr, scope, d, false)
					assertCandidates(t, got, []want{{d, prefix + "1"}, {d, prefix + "2"}})
				}
			}
		}
	}
	assertCandidates(t, c.CandidateLocations(transportA, types.BICTransportScope{Opaque: "C"}, digestCompressedA, true), nil)
	assertCandidates(t, c.CandidateLocations("dir", types.BICTransportScope{Opaque: "A"}, digestCompressedA, true), nil)
}

func testRecordAgainMovesToFront(t *testing.T, c types.BlobInfoCache) {
	scope := types.BICTransportScope{Opaque: "reg"}
	for _, l := range []string{"old", "mid", "new"} {
		c.RecordKnownLocation(transportA, scope, digestCompressedA, loc(l))
	}
	c.RecordKnownLocation(transportA, scope, digestCompressedA, loc("old"))
	assertCandidates(t, c.CandidateLocations(transportA, scope, digestCompressedA, false),
		[]want{{digestCompressedA, "old"}, {digestCompressedA, "new"}, {digestCompressedA, "mid"}})
}

// testForgetKnownLocation checks that a forgotten location is no longer a candidate, that
// nothing else is forgotten with it, that forgetting an unknown location does nothing, and that
// the location can be recorded again. Every cache of this module implements the interface.
func testForgetKnownLocation(t *testing.T, c types.BlobInfoCache) {
	f, ok := c.(types.BlobLocationForgetter)
	if !ok {
		t.Fatal("the cache is not a types.BlobLocationForgetter")
	}
	scope, other := types.BICTransportScope{Opaque: "reg"}, types.BICTransportScope{Opaque: "other"}
	for _, l := range []string{"gone", "kept"} {
		c.RecordKnownLocation(transportA, scope, digestCompressedA, loc(l))
		c.RecordKnownLocation(transportA, scope, digestCompressedB, loc(l))
		c.RecordKnownLocation(transportA, other, digestCompressedA, loc(l))
		c.RecordKnownLocation(transportB, scope, digestCompressedA, loc(l))
	}
	f.ForgetKnownLocation(transportA, scope, digestCompressedA, loc("gone"))
	f.ForgetKnownLocation(transportA, scope, digestCompressedA, loc("never"))
	f.ForgetKnownLocation(transportA, scope, digestUnknown, loc("gone"))
	assertCandidates(t, c.CandidateLocations(transportA, scope, digestCompressedA, false), []want{{digestCompressedA, "kept"}})
	both := []want{{digestCompressedB, "kept"}, {digestCompressedB, "gone"}}
	assertCandidates(t, c.CandidateLocations(transportA, scope, digestCompressedB, false), both)
	assertCandidates(t, c.CandidateLocations(transportA, other, digestCompressedA, false), []want{{digestCompressedA, "kept"}, {digestCompressedA, "gone"}})
	assertCandidates(t, c.CandidateLocations(transportB, scope, digestCompressedA, false), []want{{digestCompressedA, "kept"}, {digestCompressedA, "gone"}})
	f.ForgetKnownLocation(transportA, scope, digestCompressedA, loc("kept"))
	assertCandidates(t, c.CandidateLocations(transportA, scope, digestCompressedA, false), nil)
	c.RecordKnownLocation(transportA, scope, digestCompressedA, loc("gone"))
	assertCandidates(t, c.CandidateLocations(transportA, scope, digestCompressedA, false), []want{{digestCompressedA, "gone"}})
}

func testCandidatesWithSubstitution(t *testing.T, c types.BlobInfoCache) {
	c.RecordDigestUncompressedPair(digestCompressedA, digestUncompressed)
	c.RecordDigestUncompressedPair(digestCompressedB, digestUncompressed)
	c.RecordDigestUncompressedPair(digestUncompressed, digestUncompressed)
	names := []struct {
		n string
		d digest.Digest
	}{{"U", digestUncompressed}, {"A", digestCompressedA}, {"B", digestCompressedB}, {"X", digestUnrelated}}
	for _, scopeName := range []string{"S", "T"} {
		scope := types.BICTransportScope{Opaque: scopeName}
		assertCandidates(t, c.CandidateLocations(transportA, scope, digestUnknown, false), nil)
		assertCandidates(t, c.CandidateLocations(transportA, scope, digestUnknown, true), nil)
		// Record all "2" locations before all "1" locations: "1" are more recent.
		for _, suffix := range []string{"2", "1"} {
			for _, e := range names {
				c.RecordKnownLocation(transportA, scope, e.d, loc(scopeName+e.n+suffix))
			}
		}
		for _, e := range names {
			assertCandidates(t, c.CandidateLocations(transportA, scope, e.d, false),
				[]want{{e.d, scopeName + e.n + "1"}, {e.d, scopeName + e.n + "2"}})
		}
		// Same digest first, then substitutes most recent first.
		assertCandidates(t, c.CandidateLocations(transportA, scope, digestCompressedA, true), []want{
			{digestCompressedA, scopeName + "A1"}, {digestCompressedA, scopeName + "A2"},
			{digestCompressedB, scopeName + "B1"}, {digestUncompressed, scopeName + "U1"},
			{digestCompressedB, scopeName + "B2"}, {digestUncompressed, scopeName + "U2"},
		})
		assertCandidates(t, c.CandidateLocations(transportA, scope, digestUncompressed, true), []want{
			{digestUncompressed, scopeName + "U1"}, {digestUncompressed, scopeName + "U2"},
			{digestCompressedB, scopeName + "B1"}, {digestCompressedA, scopeName + "A1"},
			{digestCompressedB, scopeName + "B2"}, {digestCompressedA, scopeName + "A2"},
		})
		// Locations known but no relationship: no substitutes.
		assertCandidates(t, c.CandidateLocations(transportA, scope, digestUnrelated, true),
			[]want{{digestUnrelated, scopeName + "X1"}, {digestUnrelated, scopeName + "X2"}})
	}
}

func testCandidatesCompressorName(t *testing.T, c types.BlobInfoCache) {
	scope := types.BICTransportScope{Opaque: "reg"}
	c.RecordDigestUncompressedPair(digestCompressedA, digestUncompressed)
	c.RecordDigestUncompressedPair(digestCompressedB, digestUncompressed)
	c.RecordDigestCompressorName(digestCompressedA, types.GzipCompressorName)
	c.RecordDigestCompressorName(digestCompressedB, types.GzipCompressorName)
	c.RecordDigestCompressorName(digestCompressedB, types.ZstdCompressorName) // the last claim wins
	c.RecordDigestCompressorName(digestUncompressed, types.UncompressedCompressorName)
	c.RecordKnownLocation(transportA, scope, digestUncompressed, loc("u"))
	c.RecordKnownLocation(transportA, scope, digestCompressedB, loc("b"))
	c.RecordKnownLocation(transportA, scope, digestCompressedA, loc("a"))
	c.RecordKnownLocation(transportA, scope, digestUnrelated, loc("x"))
	got := c.CandidateLocations(transportA, scope, digestCompressedA, true)
	assertCandidates(t, got, []want{{digestCompressedA, "a"}, {digestCompressedB, "b"}, {digestUncompressed, "u"}})
	wantNames := []string{types.GzipCompressorName, types.ZstdCompressorName, types.UncompressedCompressorName}
	for i, n := range wantNames {
		if got[i].CompressorName != n {
			t.Errorf("candidate %d (%s): compressor %q, want %q", i, got[i].Digest, got[i].CompressorName, n)
		}
	}
	if x := c.CandidateLocations(transportA, scope, digestUnrelated, false); len(x) != 1 || x[0].CompressorName != "" {
		t.Errorf("unknown compressor: got %+v", x)
	}
}

func testCandidatesLastSeen(t *testing.T, c types.BlobInfoCache) {
	scope := types.BICTransportScope{Opaque: "reg"}
	before := time.Now().Add(-time.Second)
	c.RecordKnownLocation(transportA, scope, digestCompressedA, loc("a"))
	after := time.Now().Add(time.Second)
	got := c.CandidateLocations(transportA, scope, digestCompressedA, false)
	if len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	if got[0].LastSeen.Before(before) || got[0].LastSeen.After(after) {
		t.Fatalf("LastSeen %v not within [%v, %v]", got[0].LastSeen, before, after)
	}
}

func testCandidatesBounded(t *testing.T, c types.BlobInfoCache) {
	scope := types.BICTransportScope{Opaque: "reg"}
	var expect []want
	for i := range prioritize.MaxCandidates + 3 {
		l := fmt.Sprintf("repo%02d", i)
		c.RecordKnownLocation(transportA, scope, digestCompressedA, loc(l))
		expect = append([]want{{digestCompressedA, l}}, expect...)
	}
	assertCandidates(t, c.CandidateLocations(transportA, scope, digestCompressedA, true), expect[:prioritize.MaxCandidates])
}

func testConcurrent(t *testing.T, c types.BlobInfoCache) {
	scope := types.BICTransportScope{Opaque: "reg"}
	var wg sync.WaitGroup
	const workers, per = 4, 10
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				d := digest.FromString(fmt.Sprintf("%d-%d", w, i))
				c.RecordDigestUncompressedPair(d, digestUncompressed)
				c.RecordDigestCompressorName(d, types.GzipCompressorName)
				c.RecordKnownLocation(transportA, scope, d, loc(fmt.Sprintf("w%d", w)))
				_ = c.CandidateLocations(transportA, scope, digestUncompressed, true)
				if got := c.UncompressedDigest(d); got != digestUncompressed {
					t.Errorf("UncompressedDigest(%s) = %q", d, got)
				}
			}
		})
	}
	wg.Wait()
	if got := c.CandidateLocations(transportA, scope, digestUncompressed, true); len(got) != prioritize.MaxCandidates {
		t.Fatalf("got %d candidates, want %d", len(got), prioritize.MaxCandidates)
	}
}

// want is an expected candidate: digest and location.
type want struct {
	d   digest.Digest
	loc string
}

func loc(s string) types.BICLocationReference { return types.BICLocationReference{Opaque: s} }

func assertCandidates(t *testing.T, got []types.BICReplacementCandidate, expect []want) {
	t.Helper()
	if got == nil {
		t.Fatalf("CandidateLocations returned nil, want a (possibly empty) slice")
	}
	ok := len(got) == len(expect)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Digest == expect[i].d && got[i].Location.Opaque == expect[i].loc
	}
	if !ok {
		var g []want
		for _, c := range got {
			g = append(g, want{c.Digest, c.Location.Opaque})
		}
		t.Fatalf("candidates\n got %v\nwant %v", g, expect)
	}
}

func testManifestMapping(t *testing.T, c types.BlobInfoCache) {
	m, ok := c.(types.ManifestMappingCache)
	if !ok {
		t.Fatalf("%T does not implement types.ManifestMappingCache", c)
	}
	if got := m.ManifestMapping(digestCompressedA, "v"); got != "" {
		t.Fatalf("unknown mapping: got %q", got)
	}
	m.RecordManifestMapping(digestCompressedA, "platforms=linux/amd64", digestCompressedB)
	m.RecordManifestMapping(digestCompressedA, "format=oci", digestUnrelated)
	m.RecordManifestMapping("", "v", digestUnrelated)
	m.RecordManifestMapping(digestCompressedB, "v", "")
	for _, tc := range []struct {
		src     digest.Digest
		variant string
		want    digest.Digest
	}{
		{digestCompressedA, "platforms=linux/amd64", digestCompressedB},
		{digestCompressedA, "format=oci", digestUnrelated},
		{digestCompressedA, "", ""},
		{digestCompressedB, "platforms=linux/amd64", ""},
		{"", "v", ""},
		{digestCompressedB, "v", ""},
	} {
		if got := m.ManifestMapping(tc.src, tc.variant); got != tc.want {
			t.Errorf("ManifestMapping(%s, %q) = %q, want %q", tc.src, tc.variant, got, tc.want)
		}
	}
	m.RecordManifestMapping(digestCompressedA, "format=oci", digestOtherUncomp)
	if got := m.ManifestMapping(digestCompressedA, "format=oci"); got != digestOtherUncomp {
		t.Errorf("after re-recording: %q, want %q", got, digestOtherUncomp)
	}
}
