package sync

import (
	"regexp"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
)

func TestTagFilterSelect(t *testing.T) {
	t.Parallel()
	tags := []string{"latest", "1.19.4", "1.20.0", "1.20.1-rc1", "1.21.3", "v1.22.0", "2.0.0", "1.21.3-alpine", "edge"}
	re := func(s ...string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, p := range s {
			out = append(out, regexp.MustCompile(p))
		}
		return out
	}
	rng := func(s string) *semver.Constraints {
		c, err := semver.NewConstraint(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name string
		f    TagFilter
		want string
	}{
		{"no filter keeps all", TagFilter{}, strings.Join(tags, ",")},
		{"include", TagFilter{Include: re(`^1\.2`)}, "1.20.0,1.20.1-rc1,1.21.3,1.21.3-alpine"},
		{"include any of several", TagFilter{Include: re(`^latest$`, `^edge$`)}, "latest,edge"},
		{"unanchored as skopeo", TagFilter{Include: re(`alpine`)}, "1.21.3-alpine"},
		{"exclude", TagFilter{Exclude: re(`-`, `^v`)}, "latest,1.19.4,1.20.0,1.21.3,2.0.0,edge"},
		{"include and exclude", TagFilter{Include: re(`^1\.`), Exclude: re(`-rc`, `alpine`)}, "1.19.4,1.20.0,1.21.3"},
		{"semver range", TagFilter{Semver: rng(">=1.20 <2")}, "1.20.0,1.21.3,v1.22.0"},
		{"semver with exclude", TagFilter{Semver: rng(">=1.20 <2"), Exclude: re(`^v`)}, "1.20.0,1.21.3"},
		{"newest two, source order kept", TagFilter{Newest: 2}, "v1.22.0,2.0.0"},
		{"newest within a range", TagFilter{Semver: rng("<2"), Newest: 2}, "1.21.3,v1.22.0"},
		{"newest more than there are", TagFilter{Include: re(`^1\.19`), Newest: 5}, "1.19.4"},
		{"nothing matches", TagFilter{Include: re(`^nope$`)}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := strings.Join(tc.f.Select(tags), ","); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
