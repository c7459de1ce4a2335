package docker

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// CheckAuth checks the credentials sys gives (DockerAuthConfig, else the auth files and
// credential helpers) against registry (HOST[:PORT]; "docker.io" is Docker Hub), as `skopeo
// login` does before it stores them: GET /v2/, answering the registry's Basic or Bearer
// challenge, must end in 200. Refused credentials are types.ErrUnauthorized.
func CheckAuth(ctx context.Context, sys *types.SystemContext, registry string) error {
	if err := checkRegistryHost(registry); err != nil {
		return err
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

// checkRegistryHost returns a types.UsageError unless registry is HOST[:PORT], an IPv6
// address in brackets ("[::1]:5000"): "::1:5000" was sent on to be pinged and failed as a
// network error (exit code 7).
func checkRegistryHost(registry string) error {
	if registry != "" && !strings.ContainsAny(registry, "/ @") {
		if u, err := url.Parse("https://" + registry); err == nil && u.Host == registry {
			return nil
		}
	}
	if unbracketedIPv6(registry) {
		return types.UsageError{Err: errors.Errorf("%q is not a registry host: write an IPv6 address in brackets, as in [::1]:5000", registry)}
	}
	return types.UsageError{Err: errors.Errorf("%q is not a registry host (HOST[:PORT])", registry)}
}

// unbracketedIPv6 reports whether host, a registry as written by the user, looks like an IPv6
// address without the brackets that must enclose it ("::1:5000", "fe80::1").
func unbracketedIPv6(host string) bool {
	return !strings.HasPrefix(host, "[") && strings.Count(host, ":") >= 2
}
