package memory

import (
	"fmt"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/blobinfocache/internal/suite"
	"github.com/imgcopy/imgcopy/types"
)

func TestSuite(t *testing.T) {
	t.Parallel()
	suite.Run(t, func(*testing.T) types.BlobInfoCache { return New() })
}

func TestPruning(t *testing.T) {
	t.Parallel()
	scope := types.BICTransportScope{Opaque: "reg"}
	cases := []struct {
		name   string
		limits Limits
		// record adds n records; check verifies what survived.
		record func(c types.BlobInfoCache, n int)
		n      int
		check  func(t *testing.T, c *cache)
	}{
		{
			name:   "per digest keeps the newest",
			limits: Limits{MaxLocationsPerDigest: 3},
			n:      5,
			record: func(c types.BlobInfoCache, n int) {
				for i := range n {
					c.RecordKnownLocation("docker", scope, dg(0), loc(i))
				}
			},
			check: func(t *testing.T, c *cache) {
				got := c.CandidateLocations("docker", scope, dg(0), false)
				if len(got) != 3 || got[0].Location != loc(4) || got[2].Location != loc(2) {
					t.Fatalf("got %+v", got)
				}
				if c.nLocations != 3 {
					t.Fatalf("nLocations %d", c.nLocations)
				}
			},
		},
		{
			name:   "global cap drops the oldest",
			limits: Limits{MaxLocations: 10},
			n:      25,
			record: func(c types.BlobInfoCache, n int) {
				for i := range n {
					c.RecordKnownLocation("docker", scope, dg(i), loc(i))
				}
			},
			check: func(t *testing.T, c *cache) {
				if c.nLocations > 10 {
					t.Fatalf("nLocations %d > 10", c.nLocations)
				}
				if got := c.CandidateLocations("docker", scope, dg(24), false); len(got) != 1 {
					t.Fatalf("newest location lost: %+v", got)
				}
				if got := c.CandidateLocations("docker", scope, dg(0), false); len(got) != 0 {
					t.Fatalf("oldest location kept: %+v", got)
				}
				n := 0
				for _, l := range c.locations {
					n += len(l)
				}
				if n != c.nLocations {
					t.Fatalf("counted %d locations, nLocations %d", n, c.nLocations)
				}
			},
		},
		{
			name:   "digest pairs and compressors bounded",
			limits: Limits{MaxDigests: 10},
			n:      25,
			record: func(c types.BlobInfoCache, n int) {
				for i := range n {
					c.RecordDigestUncompressedPair(dg(i), dg(1000+i%3))
					c.RecordDigestCompressorName(dg(i), types.GzipCompressorName)
				}
			},
			check: func(t *testing.T, c *cache) {
				if len(c.uncompressed) > 10 || len(c.compressors) > 10 {
					t.Fatalf("%d pairs, %d compressors", len(c.uncompressed), len(c.compressors))
				}
				if c.UncompressedDigest(dg(24)) != dg(1000+24%3) || c.UncompressedDigest(dg(0)) != "" {
					t.Fatal("wrong records pruned")
				}
				n := 0
				for _, s := range c.byUncompressed {
					n += len(s)
				}
				if n != len(c.uncompressed) {
					t.Fatalf("reverse index has %d entries, forward %d", n, len(c.uncompressed))
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := NewWithLimits(tc.limits)
			tc.record(c, tc.n)
			tc.check(t, c.(*cache))
		})
	}
}

func dg(i int) digest.Digest { return digest.FromString(fmt.Sprint(i)) }

func loc(i int) types.BICLocationReference {
	return types.BICLocationReference{Opaque: fmt.Sprintf("repo%d", i)}
}
