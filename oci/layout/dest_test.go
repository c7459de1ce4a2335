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
					ref, err := NewReference(filepath.Join(t.TempDir(), "layout"), tc.refName)
					if err != nil {
						t.Fatal(err)
					}
					return ref
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
