package archive

import (
	"path/filepath"
	"testing"

	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		sys  *types.SystemContext
		// the classic layout stores uncompressed layers and synthesizes the manifest
		rewrites bool
	}{
		{name: "docker25", sys: nil},
		{name: "classic", sys: &types.SystemContext{DockerArchiveClassic: true}, rewrites: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conformance.Run(t, conformance.Harness{
				NewReference: func(t *testing.T) types.ImageReference {
					ref, err := NewReference(filepath.Join(t.TempDir(), "img.tar"), nil)
					if err != nil {
						t.Fatal(err)
					}
					return ref
				},
				Sys:              tc.sys,
				RewritesManifest: tc.rewrites,
				// The directory that holds the archive, where its temporary files are written.
				Snapshot: func(t *testing.T, ref types.ImageReference) string {
					return conformance.DirSnapshot(t, filepath.Dir(ref.StringWithinTransport()))
				},
			})
		})
	}
}
