package dir

import "testing"

func TestParseReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		wantErr bool
	}{
		{in: "/tmp/img"},
		{in: "relative/img"},
		{in: "/tmp/with:colon"},
		{in: "", wantErr: true},
		{in: "/tmp/a\x00b", wantErr: true},
	} {
		ref, err := Transport.ParseReference(tc.in)
		if tc.wantErr != (err != nil) {
			t.Errorf("ParseReference(%q): %v", tc.in, err)
			continue
		}
		if err == nil && (ref.StringWithinTransport() != tc.in || ref.DockerReference() != nil || ref.Transport().Name() != "dir") {
			t.Errorf("ParseReference(%q) = %#v", tc.in, ref)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"/tmp/img", "rel", "a:b", "../x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := Transport.ParseReference(s)
		if err != nil {
			return
		}
		again, err := Transport.ParseReference(ref.StringWithinTransport())
		if err != nil || again != ref {
			t.Fatalf("%q does not round-trip: %v", s, err)
		}
	})
}
