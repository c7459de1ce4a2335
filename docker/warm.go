package docker

import (
	"context"

	"github.com/imgcopy/imgcopy/types"
)

var _ types.ReferenceWarmer = reference{}

// Warm implements types.ReferenceWarmer: it pings the registry in the background, unless
// a client of this process already did, so that the clients opened later skip the ping (they
// share it through the endpoint). A failed warm-up ping is reported by the next client that
// pings, during the copy; stop forgets it.
func (r reference) Warm(ctx context.Context, sys *types.SystemContext) (stop func()) {
	c, err := r.newClient(sys)
	if err != nil {
		return func() {} // the open reports it
	}
	ep := c.endpoint
	if base, _ := ep.pinged(); base != nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	failure := &pingFailure{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.pingAs(ctx, failure)
	}()
	return func() {
		cancel()
		<-done
		ep.pingMu.Lock()
		defer ep.pingMu.Unlock()
		if ep.warmFailure == failure { // nobody asked during the copy: a later one pings again
			ep.warmFailure = nil
		}
	}
}
