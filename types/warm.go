package types

import "context"

// ReferenceWarmer is implemented by references whose images sit behind a server (a
// registry). Warm starts, in the background, what opening the reference will first wait for
// (a connection and the registry's ping), so that it overlaps the other end's work: the copy
// engine warms the destination before it opens the source, and the destination, opened
// after the source read its manifest, finds its registry already answered.
//
// Warm returns at once and has no visible effect; a failure is reported by the open or the
// first request that needs what the warm-up could not do (with the same error, without
// repeating the attempts). The returned stop cancels what is still in progress and waits
// for it to end; the caller calls it once, when the copy is over.
type ReferenceWarmer interface {
	Warm(ctx context.Context, sys *SystemContext) (stop func())
}
