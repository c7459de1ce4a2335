package dir

import (
	"path/filepath"
	"testing"

	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		NewReference: func(t *testing.T) types.ImageReference {
			return mustRef(t, filepath.Join(t.TempDir(), "img"))
		},
		// The directory that holds the image directory, so that temporary files next to it
		// count too.
		Snapshot: func(t *testing.T, ref types.ImageReference) string {
			return conformance.DirSnapshot(t, filepath.Dir(ref.StringWithinTransport()))
		},
		// A second image directory beside it, as in a store: deleting one name (DeleteTag)
		// must leave the other.
		OtherName: func(t *testing.T, ref types.ImageReference) types.ImageReference {
			return mustRef(t, filepath.Join(filepath.Dir(ref.StringWithinTransport()), "other"))
		},
	})
}

// BenchmarkLargeBlob streams a generated 512 MiB blob through PutBlob and GetBlob and fails
// when memory grows with it: go test -run XXX -bench LargeBlob ./dir
func BenchmarkLargeBlob(b *testing.B) {
	conformance.RunLargeBlob(b, func(tb testing.TB) types.ImageReference {
		return mustRef(tb, filepath.Join(tb.TempDir(), "img"))
	}, nil, 512<<20)
}
