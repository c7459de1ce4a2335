package archive

import (
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/types"
)

func TestParseReference(t *testing.T) {
	cases := []struct {
		in      string
		want    string // StringWithinTransport
		wantRef string // DockerReference().String(), "" for nil
		wantErr string
	}{
		{in: "/tmp/a.tar", want: "/tmp/a.tar"},
		{in: "/tmp/a.tar:busybox:latest", want: "/tmp/a.tar:docker.io/library/busybox:latest", wantRef: "docker.io/library/busybox:latest"},
		{in: "/tmp/a.tar:busybox", want: "/tmp/a.tar:docker.io/library/busybox:latest", wantRef: "docker.io/library/busybox:latest"},
		{in: "a.tar:localhost:5000/x/y:v1", want: "a.tar:localhost:5000/x/y:v1", wantRef: "localhost:5000/x/y:v1"},
		{in: "/tmp/a.tar:@0", want: "/tmp/a.tar:@0"},
		{in: "/tmp/a.tar:@12", want: "/tmp/a.tar:@12"},
		{in: "/tmp/a.tar:", want: "/tmp/a.tar"},
		{in: "", wantErr: "without a path"},
		{in: ":busybox:1", wantErr: "without a path"},
		{in: "/tmp/a.tar:@-1", wantErr: "invalid image index"},
		{in: "/tmp/a.tar:@01", wantErr: "invalid image index"},
		{in: "/tmp/a.tar:@x", wantErr: "invalid image index"},
		{in: "/tmp/a.tar:UPPER:1", wantErr: "parsing image name"},
		{in: "/tmp/a.tar:busybox@sha256:" + strings.Repeat("a", 64), wantErr: "names a digest"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			ref, err := Transport.ParseReference(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ref.StringWithinTransport(); got != tc.want {
				t.Errorf("StringWithinTransport %q, want %q", got, tc.want)
			}
			gotRef := ""
			if n := ref.DockerReference(); n != nil {
				gotRef = n.String()
			}
			if gotRef != tc.wantRef {
				t.Errorf("DockerReference %q, want %q", gotRef, tc.wantRef)
			}
			again, err := Transport.ParseReference(ref.StringWithinTransport())
			if err != nil || again.StringWithinTransport() != ref.StringWithinTransport() {
				t.Errorf("reparsing %q: %v", ref.StringWithinTransport(), err)
			}
			if types.ImageName(ref) != "docker-archive:"+tc.want {
				t.Errorf("ImageName %q", types.ImageName(ref))
			}
		})
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"/tmp/a.tar", "/tmp/a.tar:busybox:latest", "a:@3", "a:b@sha256:" + strings.Repeat("0", 64), "a:", ":", "a:@", "a:@99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := Transport.ParseReference(s)
		if err != nil {
			return
		}
		again, err := Transport.ParseReference(ref.StringWithinTransport())
		if err != nil {
			t.Fatalf("%q parsed to %q, which does not parse: %v", s, ref.StringWithinTransport(), err)
		}
		if again.StringWithinTransport() != ref.StringWithinTransport() {
			t.Fatalf("%q: %q reparses as %q", s, ref.StringWithinTransport(), again.StringWithinTransport())
		}
	})
}
