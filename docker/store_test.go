package docker

import (
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

func TestParseStoreReference(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string // want "" means a usage error
	}{
		{"//registry.example", "//registry.example"},
		{"//registry.example:5000/mirror/", "//registry.example:5000/mirror"},
		{"//localhost/a/b", "//localhost/a/b"},
		{"//127.0.0.1:5000", "//127.0.0.1:5000"},
		{"//docker.io/myorg", "//docker.io/myorg"},
		{"registry.example", ""},
		{"//busybox", ""},
		{"//", ""},
		{"//registry.example/Upper", ""},
		{"//registry.example/a//b", ""},
		{"//registry.example/a:tag", ""},
		{"//registry.example/a@sha256:00", ""},
		{"//reg istry.example", ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			s, err := Transport.(types.StoreTransport).ParseStoreReference(tc.in)
			if tc.want == "" {
				if !errors.Is(err, types.ErrUsage) {
					t.Fatalf("got %v, %v; want ErrUsage", s, err)
				}
				return
			}
			if err != nil || s.StringWithinTransport() != tc.want {
				t.Fatalf("got %v, %v; want %s", s, err, tc.want)
			}
		})
	}
}

func TestStoreImageReference(t *testing.T) {
	t.Parallel()
	cases := []struct {
		store, name, want string // want "" means a usage error
		implicit          bool
	}{
		{"//registry.example/mirror", "team/app:1", "//registry.example/mirror/team/app:1", false},
		{"//registry.example", "app@sha256:" + sha, "//registry.example/app@sha256:" + sha, false},
		{"//registry.example:5000", "app", "//registry.example:5000/app:latest", true},
		{"//docker.io", "app:1", "//app:1", false},
		{"//docker.io/org", "app:1", "//org/app:1", false},
		{"//registry.example", "../app:1", "", false},
		{"//registry.example", "/app:1", "", false},
		{"//registry.example", "App:1", "", false},
		{"//registry.example", "", "", false},
		{"//registry.example", "other.example:5000/app:1", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.store+" "+tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Transport.(types.StoreTransport).ParseStoreReference(tc.store)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := s.ImageReference(tc.name)
			if tc.want == "" {
				if !errors.Is(err, types.ErrUsage) {
					t.Fatalf("got %v, %v; want ErrUsage", ref, err)
				}
				return
			}
			if err != nil || ref.StringWithinTransport() != tc.want {
				t.Fatalf("got %v, %v; want %s", ref, err, tc.want)
			}
			if got := ref.(reference).implicitTag; got != tc.implicit {
				t.Errorf("implicit tag %v, want %v", got, tc.implicit)
			}
		})
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
