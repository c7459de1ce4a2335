package sync_test

import (
	"context"
	"os"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/imgcopy/imgcopy/blobinfocache/memory"
	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	syncer "github.com/imgcopy/imgcopy/sync"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// TestRunCopiesTagsOfOneImageInTurn syncs one image stored under two tags of one repository
// with two images at a time: the second copy must wait for the first (side by side they would
// push the same manifests into the repository at once), then write its tag.
func TestRunCopiesTagsOfOneImageInTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tmp := t.TempDir()
	src := helloLayout(t, filepath.Join(tmp, "src"), "app:1", "app:2")

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

// TestRunTagsOfOneImageAfterTheFirst syncs one image stored under three tags, three images at
// a time: the first copy goes alone in every store (the others are held back, to find its
// blobs); then, into a layout, the other two write their names side by side, while into a
// registry they still take turns (CNCF distribution 2.x may refuse concurrent pushes of one
// manifest).
func TestRunTagsOfOneImageAfterTheFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		destination func(t *testing.T, tmp string) string
		sideBySide  bool
	}{
		{"layout", func(t *testing.T, tmp string) string { return "oci:" + filepath.Join(tmp, "dst") }, true},
		{"registry", func(t *testing.T, tmp string) string {
			return "docker://" + testregistry.Start(t, testregistry.Options{}).Host + "/mirror"
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tmp := t.TempDir()
			src := helloLayout(t, filepath.Join(tmp, "src"), "app:1", "app:2", "app:3")
			opts := syncer.Options{
				Transports: alltransports.List(), Sources: []syncer.Source{{Name: src}},
				Destination: tc.destination(t, tmp), ImageParallel: 3,
			}
			opts.Copy.DestinationCtx = &types.SystemContext{InsecureSkipTLSVerify: types.OptionalBoolTrue}
			// The first copy holds on until both others wait for their turn; the second
			// until the third starts too (side by side) or waits for its turn once more.
			var mu gosync.Mutex
			starts, waits, sideBySide := 0, 0, false
			othersWait, thirdStarted, waitedAgain := make(chan struct{}), make(chan struct{}), make(chan struct{})
			opts.Progress = func(ev syncer.Event) {
				if ev.Kind != syncer.EventImageStarted {
					return
				}
				mu.Lock()
				starts++
				n := starts
				mu.Unlock()
				switch n {
				case 1:
					<-othersWait
				case 2:
					select {
					case <-thirdStarted:
						mu.Lock()
						sideBySide = true
						mu.Unlock()
					case <-waitedAgain:
					}
				case 3:
					close(thirdStarted)
				}
			}
			p, err := syncer.NewPlan(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			p.SetOnTurnWait(func(*syncer.Item) {
				mu.Lock()
				waits++
				n := waits
				mu.Unlock()
				switch n {
				case 2:
					close(othersWait)
				case 3:
					close(waitedAgain)
				}
			})
			rep, err := p.Run(ctx)
			if err != nil || rep.Err() != nil {
				t.Fatalf("run: %v, %v", err, rep.Err())
			}
			if c := rep.Counts[syncer.ActionCopied]; c != 3 {
				t.Errorf("%d copied, want 3: %+v", c, rep.Images)
			}
			if sideBySide != tc.sideBySide {
				t.Errorf("the later tags copied side by side: %v, want %v (%d turn waits)", sideBySide, tc.sideBySide, waits)
			}
		})
	}
}

// flushCountingCache is a write-behind blob-info cache as far as the engine can tell.
type flushCountingCache struct {
	types.BlobInfoCache
	flushes atomic.Int32
}

func (c *flushCountingCache) Flush() error {
	c.flushes.Add(1)
	return nil
}

// TestRunFlushesCacheOnce: a sync stores the blob-info cache once, after its copies, not after
// each image (15% of a sync of 2,000 small images into a layout).
func TestRunFlushesCacheOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tmp := t.TempDir()
	src := helloLayout(t, filepath.Join(tmp, "src"), "a", "b", "c")
	cache := &flushCountingCache{BlobInfoCache: memory.New()}
	opts := syncer.Options{
		Transports: alltransports.List(), Sources: []syncer.Source{{Name: src}},
		Destination: "oci:" + filepath.Join(tmp, "dst"),
	}
	opts.Copy.BlobInfoCache = cache
	p, err := syncer.NewPlan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Run(ctx)
	if err != nil || rep.Err() != nil || rep.Counts[syncer.ActionCopied] != 3 {
		t.Fatalf("run: %v, %v, %+v", err, rep.Err(), rep.Counts)
	}
	if n := cache.flushes.Load(); n != 1 {
		t.Errorf("cache flushed %d times for 3 images, want once", n)
	}
}

// TestRunCountsWhatAFailedImageMoved: an image that fails after some of its blobs were
// copied is reported with those blobs and bytes, and the totals include them.
func TestRunCountsWhatAFailedImageMoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tmp := t.TempDir()
	srcDir := filepath.Join(tmp, "src")
	helloLayout(t, srcDir, "a")
	// The image's second (last) layer is damaged at the source; the first is copied before it.
	last := filepath.Join(srcDir, "blobs", "sha256", "107e38d6b0865fc361f3279bc487058fe9ed94c6766cca286b8e06804431d5bb")
	if err := os.WriteFile(last, make([]byte, 24905), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := syncer.Options{
		Transports: alltransports.List(), Sources: []syncer.Source{{Name: "oci:" + srcDir}},
		Destination: "oci:" + filepath.Join(tmp, "dst"),
	}
	opts.Copy.ImageParallelCopies = 1
	p, err := syncer.NewPlan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Run(ctx)
	if err != nil || len(rep.Images) != 1 || rep.Images[0].Action != syncer.ActionFailed {
		t.Fatalf("run: %v, %+v; want the one image failed", err, rep.Images)
	}
	got := rep.Images[0]
	if got.BlobsCopied < 1 || got.BytesCopied < 245 {
		t.Errorf("failed image reported with %d blobs, %d bytes copied; want at least its first layer (245 bytes)", got.BlobsCopied, got.BytesCopied)
	}
	if rep.BytesCopied != got.BytesCopied {
		t.Errorf("total %d bytes copied, want the failed image's %d", rep.BytesCopied, got.BytesCopied)
	}
}

// helloLayout writes the example image into an OCI layout at dir under each tag and returns
// the layout's name, oci:DIR.
func helloLayout(t *testing.T, dir string, tags ...string) string {
	t.Helper()
	hello, err := alltransports.ParseImageName("oci:../examples/hello:latest")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		dest, err := alltransports.ParseImageName("oci:" + dir + ":" + tag)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := copier.Image(context.Background(), dest, hello, &copier.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	return "oci:" + dir
}
