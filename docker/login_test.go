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

func TestCheckAuthRejectsNonHosts(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "host/repo", "user@host"} {
		if err := CheckAuth(testContext(t), nil, bad); err == nil || !strings.Contains(err.Error(), "not a registry host") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
