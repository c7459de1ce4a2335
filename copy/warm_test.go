package copy

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// stepLog records, in order, what the test's references were asked to do.
type stepLog struct {
	mu    sync.Mutex
	steps []string
}

func (l *stepLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, s)
}

// warmingRef is a destination reference that implements types.ReferenceWarmer.
type warmingRef struct {
	*fakeRef
	log *stepLog
}

func (r warmingRef) Warm(ctx context.Context, sys *types.SystemContext) func() {
	r.log.add("warm")
	return func() { r.log.add("stop") }
}

// loggedSourceRef records when its source is opened, and fails the open with err when set.
type loggedSourceRef struct {
	*fakeRef
	log *stepLog
	err error
}

func (r loggedSourceRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	r.log.add("open source")
	if r.err != nil {
		return nil, r.err
	}
	return r.fakeRef.NewImageSource(ctx, sys)
}

// TestImageWarmsTheDestinationFirst: a destination that can warm up does so before the
// source is opened, and is stopped when the copy ends, whether it succeeded or not.
func TestImageWarmsTheDestinationFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		openErr error
	}{
		{"copied", nil},
		{"source fails", errors.New("no such image")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := &stepLog{}
			src, _ := newSingleSource(t, "application/vnd.oci.image.manifest.v1+json", makeLayer(t, 1, 1<<10, "gzip"))
			dest := warmingRef{newFakeRef("dest", newMemStore()), log}
			_, err := Image(context.Background(), dest, loggedSourceRef{src, log, tc.openErr}, nil)
			if (err != nil) != (tc.openErr != nil) {
				t.Fatalf("Image: %v", err)
			}
			if want := []string{"warm", "open source", "stop"}; !slices.Equal(log.steps, want) {
				t.Errorf("steps %q, want %q", log.steps, want)
			}
		})
	}
}
