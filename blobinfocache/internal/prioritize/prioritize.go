// Package prioritize orders blob-info cache candidates the same way for every backend.
package prioritize

import (
	"sort"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

// MaxCandidates bounds how many candidates CandidateLocations returns: each one may cost the
// destination a request (HEAD or mount attempt), and old locations rarely help.
const MaxCandidates = 10

// Sort orders candidates for a lookup of primary: locations of primary itself first, then
// substitutes; within each group the most recently seen first, ties broken by digest and
// location so the order is deterministic. The result has at most MaxCandidates entries and
// is never nil.
func Sort(primary digest.Digest, cs []types.BICReplacementCandidate) []types.BICReplacementCandidate {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if ap, bp := a.Digest == primary, b.Digest == primary; ap != bp {
			return ap
		}
		if !a.LastSeen.Equal(b.LastSeen) {
			return a.LastSeen.After(b.LastSeen)
		}
		if a.Digest != b.Digest {
			return a.Digest < b.Digest
		}
		return a.Location.Opaque < b.Location.Opaque
	})
	if len(cs) > MaxCandidates {
		cs = cs[:MaxCandidates]
	}
	if cs == nil {
		cs = []types.BICReplacementCandidate{}
	}
	return cs
}

// Substitutes lists the digests whose locations a lookup of d considers: d itself, and with
// canSubstitute every digest known to share its uncompressed digest u (u included). others
// are the digests recorded as having uncompressed form u.
func Substitutes(d, u digest.Digest, others []digest.Digest, canSubstitute bool) []digest.Digest {
	res := []digest.Digest{d}
	if !canSubstitute || u == "" {
		return res
	}
	seen := map[digest.Digest]bool{d: true}
	for _, o := range append([]digest.Digest{u}, others...) {
		if !seen[o] {
			seen[o] = true
			res = append(res, o)
		}
	}
	return res
}
