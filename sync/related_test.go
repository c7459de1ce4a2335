package sync

import (
	"strings"
	"testing"

	"github.com/distribution/reference"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

func TestTravelsWithImage(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("ab", 32)
	cases := []struct {
		tag                   string
		referrers, digestTags bool
		want                  bool
	}{
		{"v1", true, true, false},
		{"sha256-" + hex, false, false, false},
		{"sha256-" + hex, true, false, true},
		{"sha256-" + hex, false, true, false},
		{"sha256-" + hex + ".sig", false, false, false},
		{"sha256-" + hex + ".sig", true, false, false},
		{"sha256-" + hex + ".sig", false, true, true},
		{"sha256-" + hex[:10] + ".sig", true, true, false}, // not a digest
		{"sha256-" + hex[:10], true, true, false},
	}
	for _, tc := range cases {
		named, err := reference.ParseNormalizedNamed("registry.example/team/app:" + tc.tag)
		if err != nil {
			t.Fatal(err)
		}
		p := &Plan{opts: Options{Copy: copier.Options{Referrers: tc.referrers, DigestTags: tc.digestTags}}}
		if got := p.travelsWithImage(types.ListedImage{Name: named, StoredName: named.String()}); got != tc.want {
			t.Errorf("%s with referrers=%t digest-tags=%t: %t, want %t", tc.tag, tc.referrers, tc.digestTags, got, tc.want)
		}
	}
}
