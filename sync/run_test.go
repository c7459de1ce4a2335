package sync_test

import (
	"context"
	"path/filepath"
	gosync "sync"
	"testing"

	copier "github.com/imgcopy/imgcopy/copy"
	syncer "github.com/imgcopy/imgcopy/sync"
	"github.com/imgcopy/imgcopy/transports/alltransports"
)

// TestRunCopiesTagsOfOneImageInTurn syncs one image stored under two tags of one repository
// with two images at a time: the second copy must wait for the first (side by side they would
// push the same manifests into the repository at once), then write its tag.
func TestRunCopiesTagsOfOneImageInTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tmp := t.TempDir()
	src := "oci:" + filepath.Join(tmp, "src")
	hello, err := alltransports.ParseImageName("oci:../examples/hello:latest")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"app:1", "app:2"} {
		dest, err := alltransports.ParseImageName(src + ":" + tag)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := copier.Image(ctx, dest, hello, &copier.Options{}); err != nil {
			t.Fatal(err)
		}
	}

	// The first copy to start holds on (inside its progress event) until the second one
	// either starts too, which is the race, or is held back.
	var mu gosync.Mutex
	starts, raced := 0, false
	heldBack, secondStarted := make(chan struct{}), make(chan struct{})
	opts := syncer.Options{
		Transports: alltransports.List(), Sources: []syncer.Source{{Name: src}},
		Destination: "oci:" + filepath.Join(tmp, "dst"), ImageParallel: 2,
	}
	opts.Progress = func(ev syncer.Event) {
		if ev.Kind != syncer.EventImageStarted {
			return
		}
		mu.Lock()
		starts++
		n := starts
		mu.Unlock()
		if n == 2 {
			close(secondStarted)
			return
		}
		select {
		case <-heldBack:
		case <-secondStarted:
			mu.Lock()
			raced = true
			mu.Unlock()
		}
	}
	p, err := syncer.NewPlan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var once gosync.Once
	p.SetOnTurnWait(func(*syncer.Item) { once.Do(func() { close(heldBack) }) })
	rep, err := p.Run(ctx)
	if err != nil || rep.Err() != nil {
		t.Fatalf("run: %v, %v", err, rep.Err())
	}
	if raced {
		t.Errorf("both tags of one image were copied side by side; want the second held back")
	}
	if c := rep.Counts[syncer.ActionCopied]; c != 2 || starts != 2 {
		t.Errorf("%d copied after %d starts, want 2: %+v", c, starts, rep.Images)
	}
}
