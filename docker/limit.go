package docker

import (
	"net/http"
	"strings"

	"github.com/pkg/errors"
)

// startRequest announces req to the SystemContext's RequestLimiter, if any, and returns the
// function to call with its response (nil when it failed). Uploads streaming a body are not
// announced (see types.RequestLimiter).
func (c *client) startRequest(req *http.Request) (func(*http.Response), error) {
	if c.sys == nil || c.sys.RequestLimiter == nil || isStreamedBody(req) {
		return func(*http.Response) {}, nil
	}
	pull := req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/manifests/")
	done, err := c.sys.RequestLimiter.Start(req.Context(), c.registry, pull)
	if err != nil {
		return nil, errors.Wrapf(err, "waiting to send a request to %s", c.registry)
	}
	return func(resp *http.Response) {
		if resp == nil {
			done(nil)
			return
		}
		done(resp.Header.Get)
	}, nil
}

// isStreamedBody reports whether req sends a body that cannot be replayed (a blob upload).
func isStreamedBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody && req.GetBody == nil
}
