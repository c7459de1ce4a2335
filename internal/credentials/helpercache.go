package credentials

import (
	"context"
	"os/exec"
	"sync"
	"time"

	"github.com/imgcopy/imgcopy/types"
)

// helperCacheTTL is how long a credential helper's answer for a host is reused. Each source
// and destination looks its credentials up, and a sync opens them per image: a sync of 8 images
// into a registry with a credHelpers entry ran the helper 16 times, and helpers can be slow
// (gcloud's starts a Python interpreter, ecr-login may call AWS). A minute stays well within
// the life of the short-lived tokens some helpers hand out as passwords. A variable for tests.
var helperCacheTTL = time.Minute

// helperKey names one helper program (by its path, so that another PATH asks another
// program) asked about one host.
type helperKey struct{ path, host string }

// helperAnswer is the last answer of a helper for a host; mu is held while the helper runs,
// so that the lookups of images that start together run it once.
type helperAnswer struct {
	mu    sync.Mutex
	valid bool
	at    time.Time
	auth  types.DockerAuthConfig
	found bool
}

// helperAnswers maps helperKey to *helperAnswer for the life of the process.
var helperAnswers sync.Map

// cachedHelperGet is helperGet, reusing an answer (credentials, or "not found") younger than
// helperCacheTTL. Failures are not kept.
func cachedHelperGet(ctx context.Context, name, host string) (types.DockerAuthConfig, bool, error) {
	path, err := exec.LookPath("docker-credential-" + name)
	if err != nil {
		return helperGet(ctx, name, host) // which reports the missing program
	}
	v, _ := helperAnswers.LoadOrStore(helperKey{path: path, host: host}, &helperAnswer{})
	a := v.(*helperAnswer)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.valid && time.Since(a.at) < helperCacheTTL {
		return a.auth, a.found, nil
	}
	auth, found, err := helperGet(ctx, name, host)
	if err != nil {
		a.valid = false
		return auth, found, err
	}
	a.valid, a.at, a.auth, a.found = true, time.Now(), auth, found
	return auth, found, nil
}
