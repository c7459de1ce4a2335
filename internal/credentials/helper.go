package credentials

import (
	"fmt"

	"github.com/docker/docker-credential-helpers/client"
	helpercreds "github.com/docker/docker-credential-helpers/credentials"

	"github.com/imgcopy/imgcopy/types"
)

// dockerHubHelperURL is the server URL Docker stores Docker Hub credentials under.
const dockerHubHelperURL = "https://index.docker.io/v1/"

// identityTokenUser is the user name a helper returns when Secret is an identity token.
const identityTokenUser = "<token>"

// helperError is a credential helper failure other than "credentials not found".
type helperError struct {
	helper string
	host   string
	err    error
}

func (e *helperError) Error() string {
	// The helper's output is included by the client library; helpers print error messages,
	// never the secret, on failure.
	return fmt.Sprintf("getting credentials for %s from docker-credential-%s: %v", e.host, e.helper, e.err)
}

// Unwrap returns the underlying cause.
func (e *helperError) Unwrap() error { return e.err }

// helperProgram returns the ProgramFunc for a helper name; a variable so tests can count calls.
var helperProgram = func(name string) client.ProgramFunc {
	return client.NewShellProgramFunc("docker-credential-" + name)
}

// helperServerURL is what we ask a helper for: the host, or Docker Hub's historic URL.
func helperServerURL(host string) string {
	if normalizeHost(host) == "docker.io" {
		return dockerHubHelperURL
	}
	return host
}

// helperGet asks docker-credential-<name> for host. Not found is not an error.
func helperGet(name, host string) (types.DockerAuthConfig, bool, error) {
	c, err := client.Get(helperProgram(name), helperServerURL(host))
	if err != nil {
		if helpercreds.IsErrCredentialsNotFound(err) {
			return types.DockerAuthConfig{}, false, nil
		}
		return types.DockerAuthConfig{}, false, &helperError{helper: name, host: host, err: err}
	}
	if c.Username == identityTokenUser {
		return types.DockerAuthConfig{IdentityToken: c.Secret}, c.Secret != "", nil
	}
	auth := types.DockerAuthConfig{Username: c.Username, Password: c.Secret}
	return auth, auth != (types.DockerAuthConfig{}), nil
}
