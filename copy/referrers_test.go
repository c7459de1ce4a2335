package copy

import (
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestWrittenSubjects(t *testing.T) {
	t.Parallel()
	idx, a, b, a2 := digest.FromString("index"), digest.FromString("a"), digest.FromString("b"), digest.FromString("a converted")
	cases := []struct {
		name       string
		res        Result
		srcTop     digest.Digest
		topWritten bool
		want       []subjectDigest
	}{
		{"single image kept", Result{ManifestDigest: a, Instances: []InstanceResult{{SourceDigest: a, Digest: a}}}, a, true,
			[]subjectDigest{{a, a}}},
		{"single image converted", Result{ManifestDigest: a2, DigestChanged: true, Instances: []InstanceResult{{SourceDigest: a, Digest: a2}}}, a, true,
			[]subjectDigest{{a, a2}}},
		{"index and instances kept", Result{ManifestDigest: idx, Instances: []InstanceResult{{SourceDigest: a, Digest: a}, {SourceDigest: b, Digest: b}}}, idx, true,
			[]subjectDigest{{idx, idx}, {a, a}, {b, b}}},
		{"index rewritten for a converted instance", Result{ManifestDigest: digest.FromString("new index"), DigestChanged: true,
			Instances: []InstanceResult{{SourceDigest: a, Digest: a2}, {SourceDigest: b, Digest: b}}}, idx, true,
			[]subjectDigest{{idx, digest.FromString("new index")}, {a, a2}, {b, b}}},
		{"one platform of an index", Result{ManifestDigest: b, Instances: []InstanceResult{{SourceDigest: b, Digest: b}}}, idx, false,
			[]subjectDigest{{b, b}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := writtenSubjects(&tc.res, tc.srcTop, tc.topWritten); !slices.Equal(got, tc.want) {
				t.Errorf("writtenSubjects = %v, want %v", got, tc.want)
			}
		})
	}
}
