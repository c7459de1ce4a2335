package copy

import (
	"context"
	"sync"
)

// Budget is shared by copies that run side by side, such as the images of a sync: it bounds
// the layers they transfer at once, all together (configs of up to 1 MiB are not counted), and
// lets a blob that several of them need cross the network once. A copy that needs a blob
// another copy with the same Budget and BudgetScope is transferring waits for that transfer to
// end and then asks its own destination for the blob, which finds it (the same repository or
// layout), mounts it (another repository of the registry) or, if it cannot, transfers it after
// all. Create one with NewBudget; it is safe for concurrent use.
type Budget struct {
	slots chan struct{}

	mu      sync.Mutex
	flights map[string]*budgetFlight
	// onWait, set by tests, is called when a copy starts waiting for another's transfer.
	onWait func(key string)
}

type budgetFlight struct {
	done chan struct{}
	err  error
}

// NewBudget returns a Budget allowing transfers blobs at once (DefaultParallelCopies when 0
// or less).
func NewBudget(transfers int) *Budget {
	if transfers <= 0 {
		transfers = DefaultParallelCopies
	}
	return &Budget{slots: make(chan struct{}, transfers), flights: map[string]*budgetFlight{}}
}

// transfer runs fn for key unless another copy is running it: then it waits for that to end
// and runs fn itself (fn checks the destination first and finds the blob, or mounts it, or
// transfers it when the other copy failed), registered in its turn, so that copies waiting for
// one blob take turns rather than all mounting it into one repository at once (CNCF
// distribution 2.x rewrites the repository's link to the blob on every mount, and a manifest
// pushed meanwhile is refused with "blob unknown"). It never holds a transfer slot while
// waiting.
func (b *Budget) transfer(ctx context.Context, key string, fn func() (blobResult, error)) (blobResult, error) {
	for {
		b.mu.Lock()
		f, busy := b.flights[key]
		if !busy {
			f = &budgetFlight{done: make(chan struct{})}
			b.flights[key] = f
			b.mu.Unlock()
			res, err := fn()
			b.mu.Lock()
			delete(b.flights, key)
			f.err = err
			b.mu.Unlock()
			close(f.done)
			return res, err
		}
		onWait := b.onWait
		b.mu.Unlock()
		if onWait != nil {
			onWait(key)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return blobResult{}, ctx.Err()
		}
	}
}
