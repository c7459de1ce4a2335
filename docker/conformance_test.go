package docker

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts testregistry.Options
		sys  func(*testregistry.Registry) *types.SystemContext
	}{
		{name: "plain", sys: func(*testregistry.Registry) *types.SystemContext { return anonSys() }},
		{name: "tls bearer", opts: testregistry.Options{TLS: true, BearerToken: true, BasicAuth: testUsers},
			sys: func(r *testregistry.Registry) *types.SystemContext {
				return &types.SystemContext{CertDir: r.CertDir, DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: "s3cret"}}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, tc.opts)
			var n atomic.Int64
			conformance.Run(t, conformance.Harness{
				NewReference: func(t *testing.T) types.ImageReference {
					return mustParse(t, fmt.Sprintf("//%s/conformance/repo%d:latest", reg.Host, n.Add(1)))
				},
				Sys: tc.sys(reg),
				OtherName: func(t *testing.T, ref types.ImageReference) types.ImageReference {
					return mustParse(t, "//"+ref.(reference).named.Name()+":other")
				},
			})
		})
	}
}
