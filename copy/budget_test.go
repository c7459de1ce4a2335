package copy

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// publishingRef is a fakeRef whose destinations make a blob visible in the store as soon as
// PutBlob returns, as registries and OCI layouts do, and count transfers across all of them.
type publishingRef struct {
	*fakeRef
	stats *transferStats
}

type transferStats struct {
	mu                  sync.Mutex
	inFlight, maxFlight int
	puts                map[digest.Digest]int
}

func (r publishingRef) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	d, err := r.fakeRef.NewImageDestination(ctx, sys)
	if err != nil {
		return nil, err
	}
	return publishingDest{d.(*fakeDest), r.stats}, nil
}

type publishingDest struct {
	*fakeDest
	stats *transferStats
}

func (d publishingDest) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	s := d.stats
	layer := !opts.IsConfig // configs, already in memory, take no transfer slot
	s.mu.Lock()
	if layer {
		s.inFlight++
		s.maxFlight = max(s.maxFlight, s.inFlight)
	}
	s.mu.Unlock()
	got, err := d.fakeDest.PutBlob(ctx, r, info, opts)
	s.mu.Lock()
	if layer {
		s.inFlight--
	}
	if err == nil {
		s.puts[got.Digest]++
	}
	s.mu.Unlock()
	if err == nil {
		d.mu.Lock()
		b := d.staged[got.Digest]
		d.mu.Unlock()
		d.ref.store.putBlob(b)
	}
	return got, err
}

// TestBudgetSharedAcrossCopies copies two images that share a layer side by side with one
// Budget: the shared layer is held in transfer until the second copy waits for it, and must
// then cross once, with at most the budget's transfers at a time across both copies.
func TestBudgetSharedAcrossCopies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// cancelFirst cancels the copy that transfers the shared layer while the other waits:
		// the waiting copy must then transfer it itself.
		cancelFirst bool
	}{
		{"waiter reuses the transfer", false},
		{"waiter takes over a cancelled transfer", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shared := makeLayer(t, 7, 64<<10, "gzip")
			srcStore := newMemStore()
			var srcs []*fakeRef
			for i := range 2 {
				img := putImage(t, srcStore, imgspecv1.MediaTypeImageManifest, "amd64", []testLayer{shared, makeLayer(t, int64(20+i), 8<<10, "gzip")}, nil)
				st := newMemStore()
				st.blobs, st.manifests = srcStore.blobs, srcStore.manifests
				st.setTop(img.manifest, img.mimeType)
				srcs = append(srcs, newFakeRef("src", st))
			}
			// Both sources serve the shared store; the first GetBlob of the shared layer waits
			// until the other copy waits for it.
			started, waiting := make(chan struct{}), make(chan struct{})
			var startOnce, waitOnce sync.Once
			var gets sync.Map
			gate := func(ctx context.Context, d digest.Digest) error {
				n, _ := gets.LoadOrStore(d, new(int))
				srcStore.mu.Lock()
				*n.(*int)++
				srcStore.mu.Unlock()
				if d != shared.digest() {
					return nil
				}
				first := false
				startOnce.Do(func() { first = true; close(started) })
				if !first {
					return nil
				}
				select {
				case <-waiting:
				case <-ctx.Done():
					return ctx.Err()
				}
				if tc.cancelFirst {
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			}
			for _, s := range srcs {
				s.src.gate = gate
			}
			budget := NewBudget(1)
			budget.onWait = func(key string) {
				if strings.HasPrefix(key, "dst\x00"+shared.digest().String()) {
					waitOnce.Do(func() { close(waiting) })
				}
			}
			stats := &transferStats{puts: map[digest.Digest]int{}}
			destStore := newMemStore()
			errs := make([]error, 2)
			var wg sync.WaitGroup
			ctx1, cancel1 := context.WithCancel(ctx)
			defer cancel1()
			for i := range 2 {
				cctx := ctx
				if i == 0 {
					cctx = ctx1
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i == 1 {
						<-started // the first copy holds the shared layer now
					}
					dest := publishingRef{newFakeRef("dst", destStore), stats}
					_, errs[i] = Image(cctx, dest, srcs[i], &Options{Budget: budget, BudgetScope: "dst"})
				}()
			}
			if tc.cancelFirst {
				select {
				case <-waiting:
				case <-ctx.Done():
				}
				cancel1()
			}
			wg.Wait()
			if tc.cancelFirst {
				if !errors.Is(errs[0], context.Canceled) || errs[1] != nil {
					t.Fatalf("copies ended with %v and %v; want cancelled and success", errs[0], errs[1])
				}
			} else if errs[0] != nil || errs[1] != nil {
				t.Fatalf("copies failed: %v, %v", errs[0], errs[1])
			}
			n, _ := gets.Load(shared.digest())
			wantGets := 1
			if tc.cancelFirst {
				wantGets = 2 // the cancelled transfer, then the waiter's own
			}
			if got := *n.(*int); got != wantGets {
				t.Errorf("shared layer fetched %d times, want %d", got, wantGets)
			}
			if got := stats.puts[shared.digest()]; got != 1 {
				t.Errorf("shared layer stored %d times, want 1", got)
			}
			if stats.maxFlight > 1 {
				t.Errorf("%d layers in transfer at once across the copies, budget 1", stats.maxFlight)
			}
		})
	}
}

// TestBudgetWaitersTakeTurns: two copies waiting for one blob's transfer must not both go on
// at once when it ends (they would mount the blob into one repository side by side), but one
// after the other, the second finding the blob the first placed.
func TestBudgetWaitersTakeTurns(t *testing.T) {
	t.Parallel()
	b := NewBudget(4)
	events := make(chan string, 8)
	b.onWait = func(string) { events <- "wait" }
	release := make(chan struct{})
	var wg sync.WaitGroup
	start := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = b.transfer(context.Background(), "blob", func() (blobResult, error) {
				events <- "run"
				<-release
				return blobResult{}, nil
			})
		}()
	}
	start()
	if ev := <-events; ev != "run" {
		t.Fatalf("first copy: %s, want run", ev)
	}
	start()
	start()
	for range 2 {
		if ev := <-events; ev != "wait" {
			t.Fatalf("waiting copies: %s, want wait", ev)
		}
	}
	release <- struct{}{} // the first transfer ends
	next := []string{<-events, <-events}
	close(release)
	wg.Wait()
	if next[0] == "run" && next[1] == "run" {
		t.Errorf("both waiting copies went on at once; want one to run and the other to wait for it")
	}
}
