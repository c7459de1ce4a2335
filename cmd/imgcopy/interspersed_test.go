package main

import (
	"testing"

	"github.com/imgcopy/imgcopy/types"
)

// TestDoubleDash checks that everything after "--" is an argument, wherever "--" stands: a
// copy with SRC -- DST, and a flag-looking name that only "--" makes an argument.
func TestDoubleDash(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		src, dst string
	}{
		{"between the arguments", []string{"dir:/a", "--", "oci:/b"}, "dir:/a", "oci:/b"},
		{"before the arguments", []string{"--", "dir:/a", "oci:/b"}, "dir:/a", "oci:/b"},
		{"with the command and a flag after it", []string{"copy", "dir:/a", "--all", "--", "oci:/b"}, "dir:/a", "oci:/b"},
		{"a flag-looking argument", []string{"copy", "--", "dir:/a", "dir:--all"}, "dir:/a", "dir:--all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if code := h.run(tc.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, h.stderr.String())
			}
			if got := types.ImageName(h.src); got != tc.src {
				t.Errorf("SRC = %q, want %q", got, tc.src)
			}
			if got := types.ImageName(h.dest); got != tc.dst {
				t.Errorf("DST = %q, want %q", got, tc.dst)
			}
		})
	}
}
