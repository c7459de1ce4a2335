package docker

import (
	"context"
	"net/http"
	"strings"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// CheckAuth checks the credentials sys gives (DockerAuthConfig, else the auth files and
// credential helpers) against registry (HOST[:PORT]; "docker.io" is Docker Hub), as `skopeo
// login` does before it stores them: GET /v2/, answering the registry's Basic or Bearer
// challenge, must end in 200. Refused credentials are types.ErrUnauthorized.
func CheckAuth(ctx context.Context, sys *types.SystemContext, registry string) error {
	if registry == "" || strings.ContainsAny(registry, "/ @") {
		return types.UsageError{Err: errors.Errorf("%q is not a registry host (HOST[:PORT])", registry)}
	}
	host := registry
	if registry == dockerHubDomain || registry == "index.docker.io" {
		registry, host = dockerHubDomain, dockerHubAPIHost
	}
	c, err := newClient(sys, registry, host, "")
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/v2/"})
	if err != nil {
		return errors.Wrapf(err, "checking the credentials for %s", registry)
	}
	if resp.StatusCode == http.StatusOK {
		drain(resp)
		return nil
	}
	return errors.Wrapf(c.statusError(resp, kindOther), "checking the credentials for %s", registry)
}
