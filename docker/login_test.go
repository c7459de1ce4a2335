package docker

import (
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

func TestCheckAuth(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts testregistry.Options
	}{
		{name: "basic", opts: testregistry.Options{BasicAuth: testUsers}},
		{name: "bearer", opts: testregistry.Options{BearerToken: true, BasicAuth: testUsers}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, tc.opts)
			ctx := testContext(t)
			login := func(user, pass string) error {
				return CheckAuth(ctx, &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: user, Password: pass}}, reg.Host)
			}
			for user, pass := range testUsers {
				if err := login(user, pass); err != nil {
					t.Fatalf("right credentials for %s: %v", user, err)
				}
				err := login(user, pass+"x")
				if !errors.Is(err, types.ErrUnauthorized) || !strings.Contains(err.Error(), reg.Host) {
					t.Fatalf("wrong password: %v, want ErrUnauthorized naming %s", err, reg.Host)
				}
				if strings.Contains(err.Error(), pass) {
					t.Fatalf("the error shows the password: %v", err)
				}
			}
			if err := login("", ""); !errors.Is(err, types.ErrUnauthorized) {
				t.Fatalf("no credentials: %v, want ErrUnauthorized", err)
			}
		})
	}
}

// TestCheckAuthRejectsNonHosts checks that what is not HOST[:PORT] is a usage error before
// any request; an IPv6 address without brackets ("::1:5000") was pinged and failed as a
// network error (exit code 7) with a URL parser's message.
func TestCheckAuthRejectsNonHosts(t *testing.T) {
	t.Parallel()
	cases := []struct{ host, want string }{
		{"", "not a registry host"},
		{"host/repo", "not a registry host"},
		{"user@host", "not a registry host"},
		{"::1:5000", "write an IPv6 address in brackets"},
		{"::1", "write an IPv6 address in brackets"},
		{"[::1", "not a registry host"},
		{"host:port", "not a registry host"},
	}
	for _, tc := range cases {
		err := CheckAuth(testContext(t), nil, tc.host)
		if err == nil || !strings.Contains(err.Error(), tc.want) || types.Classify(err) != types.ClassUsage {
			t.Errorf("%q: %v, want a usage error saying %q", tc.host, err, tc.want)
		}
	}
}
