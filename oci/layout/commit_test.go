package layout

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// stageImage writes img's blobs (without its config when noConfig: the image is then
// incomplete) and manifest into a destination of ref, for the caller to commit and close.
func stageImage(t *testing.T, ref types.ImageReference, img conformance.Image, noConfig bool) types.ImageDestination {
	t.Helper()
	dest, err := ref.NewImageDestination(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dest.Close() })
	for _, b := range img.Blobs() {
		if noConfig && b.Digest == img.Config.Digest {
			continue
		}
		info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
		if _, err := dest.PutBlob(context.Background(), bytes.NewReader(b.Data), info, types.PutBlobOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(context.Background(), img.Manifest, img.MIMEType, nil); err != nil {
		t.Fatal(err)
	}
	return dest
}

// queued returns the requests waiting in the commit queue of the layout at dir.
func queued(t *testing.T, dir string) []*commitRequest {
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	commitQueues.mu.Lock()
	defer commitQueues.mu.Unlock()
	if q := commitQueues.queues[abs]; q != nil {
		return append([]*commitRequest(nil), q.pending...)
	}
	return nil
}

// TestCommitsWaitingAreWrittenTogether commits several images into one layout while its lock
// is held: they queue, and are written in one batch, with one read of index.json; an image
// that is incomplete fails alone, one whose context ends while it waits gets no entry, and
// when the first to lead gives up waiting for the lock, the next leads. Not parallel: other
// tests would read index.json files meanwhile.
func TestCommitsWaitingAreWrittenTogether(t *testing.T) {
	tests := []struct {
		name       string
		incomplete int // this image lacks its config (-1: none)
		cancel     int // this image's context ends while it waits (-1: none; 0: the leader's)
	}{
		{"all complete", -1, -1},
		{"one incomplete", 2, -1},
		{"one cancelled while waiting", -1, 3},
		{"the leader cancelled while waiting for the lock", -1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			mustWrite(t, mustRef(t, dir, "old"), testImage(t, imgspecv1.MediaTypeImageManifest, "old"))
			const n = 5
			imgs := make([]conformance.Image, n)
			dests := make([]types.ImageDestination, n)
			for i := range n {
				imgs[i] = testImage(t, imgspecv1.MediaTypeImageManifest, "arch"+strconv.Itoa(i))
				dests[i] = stageImage(t, mustRef(t, dir, "t"+strconv.Itoa(i)), imgs[i], i == tc.incomplete)
			}
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			unlock, err := lockLayout(context.Background(), root, dir)
			if err != nil {
				t.Fatal(err)
			}
			ctxs := make([]context.Context, n)
			cancels := make([]context.CancelFunc, n)
			for i := range n {
				ctxs[i], cancels[i] = context.WithCancel(context.Background())
				defer cancels[i]()
			}
			errs := make([]error, n)
			done := make([]chan struct{}, n)
			var wg sync.WaitGroup
			for i := range n {
				// One at a time into the queue, so that the first leads.
				done[i] = make(chan struct{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer close(done[i])
					errs[i] = dests[i].Commit(ctxs[i], types.CommitOptions{})
				}()
				for len(queued(t, dir)) != i+1 {
					runtime.Gosched()
				}
			}
			if tc.cancel >= 0 {
				cancels[tc.cancel]()
				<-done[tc.cancel]
			}
			reads := indexReads.Load()
			unlock()
			wg.Wait()
			if got := indexReads.Load() - reads; got != 1 {
				t.Errorf("index.json read %d times for one batch, want 1", got)
			}
			idx := readIndexForTest(t, dir)
			names := map[string]bool{}
			for _, e := range idx.Manifests {
				names[RefName(e)] = true
			}
			for i := range n {
				name := "t" + strconv.Itoa(i)
				switch i {
				case tc.incomplete:
					if !errors.Is(errs[i], types.ErrBlobNotFound) {
						t.Errorf("incomplete image: %v, want ErrBlobNotFound", errs[i])
					}
				case tc.cancel:
					if !errors.Is(errs[i], context.Canceled) {
						t.Errorf("cancelled image: %v, want context.Canceled", errs[i])
					}
				default:
					if errs[i] != nil {
						t.Errorf("image %s: %v", name, errs[i])
					}
					checkReadable(t, mustRef(t, dir, name), imgs[i])
				}
				if failed := i == tc.incomplete || i == tc.cancel; names[name] == failed {
					t.Errorf("image %s in index.json: %v, want %v", name, names[name], !failed)
				}
			}
			if !names["old"] || len(idx.Manifests) != len(names) {
				t.Errorf("index.json: %v", names)
			}
		})
	}
}

// TestIndexUpdateIsUpdateIndex: adding images at once gives the index UpdateIndex gives
// adding them one by one, and encodeIndex the bytes json.Marshal writes, from the entries'
// encodings kept or not.
func TestIndexUpdateIsUpdateIndex(t *testing.T) {
	t.Parallel()
	desc := func(s string, name string) imgspecv1.Descriptor {
		d := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString(s), Size: int64(len(s))}
		if name != "" {
			d.Annotations = map[string]string{imgspecv1.AnnotationRefName: name, "x": `"manifests":[]`}
		}
		return d
	}
	base := &imgspecv1.Index{
		Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests:   []imgspecv1.Descriptor{desc("a", "a"), desc("u1", ""), desc("b", "b"), desc("a2", "a"), desc("u2", "")},
		Annotations: map[string]string{"note": "kept"},
		Subject:     &imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString("s"), Size: 1},
	}
	type add struct{ s, name string }
	tests := []struct {
		name string
		adds []add
	}{
		{"none", nil},
		{"new names", []add{{"c", "c"}, {"d", "d"}}},
		{"a name twice, replacing", []add{{"x", "a"}, {"c", "c"}, {"y", "a"}}},
		{"the unnamed entries", []add{{"z", ""}}},
		{"all", []add{{"1", "b"}, {"2", ""}, {"3", "a"}, {"4", "e"}}},
	}
	for _, tc := range tests {
		for _, kept := range []bool{false, true} {
			t.Run(tc.name+"/kept "+strconv.FormatBool(kept), func(t *testing.T) {
				t.Parallel()
				start := encodedIndex{idx: base}
				if kept {
					start = newIndexUpdate(start).result()
				}
				u := newIndexUpdate(start)
				want := base
				for _, a := range tc.adds {
					u.add(desc(a.s, "ignored"), a.name)
					want = UpdateIndex(want, desc(a.s, "ignored"), a.name)
				}
				got := u.result()
				wantJSON, err := json.Marshal(want)
				if err != nil {
					t.Fatal(err)
				}
				gotJSON, err := encodeIndex(got.idx, got.entries)
				if err != nil || !bytes.Equal(gotJSON, wantJSON) {
					t.Errorf("encodeIndex: %v\n%s\nwant\n%s", err, gotJSON, wantJSON)
				}
				plain, _ := json.Marshal(got.idx)
				if !bytes.Equal(plain, wantJSON) {
					t.Errorf("index:\n%s\nwant\n%s", plain, wantJSON)
				}
			})
		}
	}
}

// BenchmarkCommitMany writes 1,000 images into a new layout, four at a time as a sync does:
// 1,000 tags of one image (each writes only its name) or 1,000 distinct small images. Run
// with -benchtime=1x; each op is the whole run.
func BenchmarkCommitMany(b *testing.B) {
	const n, parallel = 1000, 4
	for _, distinct := range []bool{false, true} {
		name := "tags of one image"
		if distinct {
			name = "distinct images"
		}
		b.Run(name, func(b *testing.B) {
			imgs := make([]conformance.Image, n)
			for i := range n {
				arch := "amd64"
				if distinct {
					arch = "arch" + strconv.Itoa(i)
				}
				img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: imgspecv1.MediaTypeImageManifest, Architecture: arch, Layers: 1})
				if err != nil {
					b.Fatal(err)
				}
				imgs[i] = img
			}
			for b.Loop() {
				dir := filepath.Join(b.TempDir(), "layout")
				work := make(chan int)
				var wg sync.WaitGroup
				for range parallel {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range work {
							if err := writeImage(context.Background(), mustRef(b, dir, "t"+strconv.Itoa(i)), imgs[i]); err != nil {
								b.Error(err)
							}
						}
					}()
				}
				for i := range n {
					work <- i
				}
				close(work)
				wg.Wait()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
