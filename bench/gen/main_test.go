package main

import (
	"path/filepath"
	"testing"
)

// TestDeterministic checks that the quick workloads that do not depend on the Go installation
// come out with the digests the published reports list.
func TestDeterministic(t *testing.T) {
	want := map[string]string{
		"big":   "sha256:b14984f99aa438b8b42ecec2a5ae8c108ad2e4d9be9176ba3a7eeaefce708dd6",
		"many":  "sha256:3537ed84c188c7fbf6d92f90a5a6f5ca05d6d303bb3d00b6d89169e2b7a63ce4",
		"multi": "sha256:402525381a39e22fafd9c70a1dfd22df86a7c5e92f47e262625353b6f57f79f0",
	}
	all := workloads(true)
	for name, digest := range want {
		got, _, err := writeLayout(filepath.Join(t.TempDir(), name), all[name])
		if err != nil {
			t.Fatal(err)
		}
		if got != digest {
			t.Errorf("%s: digest %s, want %s", name, got, digest)
		}
	}
}
