package layout

import (
	"path/filepath"
	"testing"

	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name, refName string
	}{
		{"named", "v1"},
		{"unnamed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conformance.Run(t, conformance.Harness{
				NewReference: func(t *testing.T) types.ImageReference {
					return mustRef(t, filepath.Join(t.TempDir(), "layout"), tc.refName)
				},
				// The directory that holds the layout: staging directories and lock files
				// inside it, temporary files next to it.
				Snapshot: func(t *testing.T, ref types.ImageReference) string {
					return conformance.DirSnapshot(t, filepath.Dir(ref.StringWithinTransport()))
				},
				OtherName: func(t *testing.T, ref types.ImageReference) types.ImageReference {
					return mustRef(t, ref.(reference).path, "other")
				},
			})
		})
	}
}

// BenchmarkLargeBlob streams a generated 512 MiB blob through PutBlob and GetBlob and fails
// when memory grows with it: go test -run XXX -bench LargeBlob ./oci/layout
func BenchmarkLargeBlob(b *testing.B) {
	conformance.RunLargeBlob(b, func(tb testing.TB) types.ImageReference {
		return mustRef(tb, filepath.Join(tb.TempDir(), "layout"), "big")
	}, nil, 512<<20)
}
