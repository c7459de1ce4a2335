package alltransports

import (
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestMalformedReferencesAreUsageErrors checks that every transport's ParseReference reports
// a malformed reference as a usage error, so a library user gets ClassUsage (exit code 2 in
// the CLI) without going through TransportList.ParseImageName.
func TestMalformedReferencesAreUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ transport, ref string }{
		{"docker", "busybox"},
		{"docker", "//UPPER/Case"},
		{"docker", "//busybox@sha256:abc"},
		{"dir", ""},
		{"dir", "a\x00b"},
		{"oci", ""},
		{"oci", "/tmp/x:bad name"},
		{"oci", "/tmp/x@sha256:abc"},
		{"oci-archive", ":v1"},
		{"oci-archive", "/tmp/x.tar:bad name"},
		{"docker-archive", ""},
		{"docker-archive", "/tmp/x.tar:@-1"},
		{"docker-archive", "/tmp/x.tar:UPPER"},
		{"docker-archive", "/tmp/x.tar:app@sha256:0123456789012345678901234567890123456789012345678901234567890123"},
	}
	l := List()
	for _, tc := range cases {
		t.Run(tc.transport+":"+tc.ref, func(t *testing.T) {
			t.Parallel()
			ref, err := l.Get(tc.transport).ParseReference(tc.ref)
			if err == nil {
				t.Fatalf("ParseReference(%q) = %s, want an error", tc.ref, types.ImageName(ref))
			}
			if !errors.Is(err, types.ErrUsage) || types.Classify(err) != types.ClassUsage {
				t.Errorf("ParseReference(%q): %v is in class %v, want usage", tc.ref, err, types.Classify(err))
			}
		})
	}
}
