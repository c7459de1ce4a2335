package sync

import (
	"regexp"
	"sort"

	"github.com/Masterminds/semver/v3"
)

// TagFilter selects tags from a repository's list. A tag is selected when it matches one of
// Include (any tag when Include is empty), none of Exclude and, when Semver is set, parses as
// a semantic version inside the range. Newest, when positive, then keeps only the Newest
// highest versions among the selected tags (tags that are not versions are dropped).
// Regular expressions match anywhere in the tag unless anchored, as in skopeo.
type TagFilter struct {
	Include []*regexp.Regexp
	Exclude []*regexp.Regexp
	Semver  *semver.Constraints
	Newest  int
}

// Select returns the tags of tags that f selects, in the order of tags.
func (f TagFilter) Select(tags []string) []string {
	type versioned struct {
		tag string
		v   *semver.Version
		i   int
	}
	var kept []versioned
	for i, tag := range tags {
		if !f.matches(tag) {
			continue
		}
		var v *semver.Version
		if f.Semver != nil || f.Newest > 0 {
			var err error
			if v, err = semver.NewVersion(tag); err != nil {
				continue
			}
			if f.Semver != nil && !f.Semver.Check(v) {
				continue
			}
		}
		kept = append(kept, versioned{tag, v, i})
	}
	if f.Newest > 0 && len(kept) > f.Newest {
		sort.SliceStable(kept, func(a, b int) bool { return kept[a].v.GreaterThan(kept[b].v) })
		kept = kept[:f.Newest]
		sort.Slice(kept, func(a, b int) bool { return kept[a].i < kept[b].i })
	}
	out := make([]string, len(kept))
	for i, k := range kept {
		out[i] = k.tag
	}
	return out
}

func (f TagFilter) matches(tag string) bool {
	if len(f.Include) > 0 && !anyMatch(f.Include, tag) {
		return false
	}
	return !anyMatch(f.Exclude, tag)
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
