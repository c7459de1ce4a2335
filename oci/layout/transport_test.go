package layout

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
)

const testHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in         string
		path, name string
		digest     digest.Digest
		wantErr    bool
	}{
		{in: "/tmp/l", path: "/tmp/l"},
		{in: "/tmp/l:", path: "/tmp/l"},
		{in: "/tmp/l:v1", path: "/tmp/l", name: "v1"},
		{in: "rel/dir:v1.2-rc.3", path: "rel/dir", name: "v1.2-rc.3"},
		{in: "/tmp/l:example.com:5000/ns/app:v1", path: "/tmp/l", name: "example.com:5000/ns/app:v1"},
		{in: "/tmp/l@sha256:" + testHex, path: "/tmp/l", digest: digest.Digest("sha256:" + testHex)},
		{in: "/tmp/a@b/l:tag", path: "/tmp/a@b/l", name: "tag"},
		{in: "", wantErr: true},
		{in: ":v1", wantErr: true},
		{in: "/tmp/l:bad tag", wantErr: true},
		{in: "/tmp/l:-lead", wantErr: true},
		{in: "/tmp/l:a//b", wantErr: true},
		{in: "/tmp/l:../x", wantErr: true},
		{in: "/tmp/l@sha256:1234", wantErr: true},
		{in: "/tmp/l@md5:" + testHex[:32], wantErr: true},
		{in: "/tmp/l@sha256:../../" + testHex[:58], wantErr: true},
		{in: "/tmp/l\x00x:v1", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ref, err := Transport.ParseReference(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseReference(%q) succeeded: %#v", tc.in, ref)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tc.in, err)
			}
			r := ref.(reference)
			if r.path != tc.path || r.name != tc.name || r.digest != tc.digest {
				t.Errorf("ParseReference(%q) = %#v", tc.in, r)
			}
			again, err := Transport.ParseReference(ref.StringWithinTransport())
			if err != nil || again.(reference) != r {
				t.Errorf("StringWithinTransport %q does not round-trip: %#v, %v", ref.StringWithinTransport(), again, err)
			}
		})
	}
}

func TestDockerReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, want string }{
		{"", ""},
		{"v1", ""},
		{"busybox:latest", "docker.io/library/busybox:latest"},
		{"example.com/ns/app:v1", "example.com/ns/app:v1"},
		{"example.com/ns/app", ""},
	} {
		ref, err := NewReference("/tmp/x", tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if n := ref.DockerReference(); n != nil {
			got = n.String()
		}
		if got != tc.want {
			t.Errorf("DockerReference of %q = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"/tmp/l", "/tmp/l:v1", "/tmp/l:example.com/a/b:c", "/tmp/l@sha256:" + testHex, "a@b:c", "x:a--b", "x:@", "x@sha512:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := Transport.ParseReference(s)
		if err != nil {
			return
		}
		again, err := Transport.ParseReference(ref.StringWithinTransport())
		if err != nil {
			t.Fatalf("%q parsed, but its string %q does not: %v", s, ref.StringWithinTransport(), err)
		}
		if again.(reference) != ref.(reference) {
			t.Fatalf("%q: round trip changed %#v to %#v", s, ref, again)
		}
		if r := ref.(reference); r.digest != "" {
			if _, err := BlobPath(r.digest); err != nil {
				t.Fatalf("%q: accepted digest %q has no blob path: %v", s, r.digest, err)
			}
		}
	})
}
