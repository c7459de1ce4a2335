package archive

import (
	"path/filepath"
	"testing"

	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		NewReference: func(t *testing.T) types.ImageReference {
			ref, err := NewReference(filepath.Join(t.TempDir(), "image.tar"), "v1")
			if err != nil {
				t.Fatal(err)
			}
			return ref
		},
		// The directory that holds the archive, where its temporary file is written.
		Snapshot: func(t *testing.T, ref types.ImageReference) string {
			return conformance.DirSnapshot(t, filepath.Dir(ref.StringWithinTransport()))
		},
	})
}

// BenchmarkLargeBlob streams a generated 512 MiB blob through PutBlob and GetBlob and fails
// when memory grows with it: go test -run XXX -bench LargeBlob ./oci/archive
func BenchmarkLargeBlob(b *testing.B) {
	conformance.RunLargeBlob(b, func(tb testing.TB) types.ImageReference {
		ref, err := NewReference(filepath.Join(tb.TempDir(), "big.tar"), "big")
		if err != nil {
			tb.Fatal(err)
		}
		return ref
	}, nil, 512<<20)
}
