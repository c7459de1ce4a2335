package memtransport_test

import (
	"fmt"
	"testing"

	"github.com/imgcopy/imgcopy/examples/memtransport"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// TestConformance runs the suite every transport runs, unchanged: a transport written
// outside this module does exactly the same from its own tests.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		// A fresh, empty location: a new store for each reference.
		NewReference: func(t *testing.T) types.ImageReference {
			ref, err := memtransport.New("mem").ParseReference("conformance/img:latest")
			if err != nil {
				t.Fatal(err)
			}
			return ref
		},
		// Everything the store holds: a failed write must add nothing.
		Snapshot: func(t *testing.T, ref types.ImageReference) string {
			return fmt.Sprint(ref.Transport().(*memtransport.Store).Digests())
		},
	})
}
