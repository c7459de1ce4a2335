package copy

import (
	"slices"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/types"
)

// eventLog collects progress events.
type eventLog struct {
	mu     sync.Mutex
	events []ProgressEvent
}

func (l *eventLog) add(e ProgressEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) of(kind ProgressEventKind, d digest.Digest) []ProgressEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ProgressEvent
	for _, e := range l.events {
		if e.Kind == kind && e.Digest == d {
			out = append(out, e)
		}
	}
	return out
}

// TestCopyCountsResumedBytes: what the source's stream took from kept data, or what the
// destination already held, is counted per blob (the larger of the two) and reported.
func TestCopyCountsResumedBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		source, destHeld int64
		want             int64
	}{
		{name: "source kept", source: 3000, want: 3000},
		{name: "destination held", destHeld: 5000, want: 5000},
		{name: "both: the larger", source: 3000, destHeld: 2000, want: 3000},
		{name: "nothing kept", want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			layer := makeLayer(t, 1, 20<<10, "gzip")
			src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
			if tc.source > 0 {
				src.src.kept = map[digest.Digest]int64{layer.digest(): tc.source}
			}
			dest := newFakeRef("dest", newMemStore())
			if tc.destHeld > 0 {
				dest.dest.held = map[digest.Digest]int64{layer.digest(): tc.destHeld}
			}
			var log eventLog
			res := mustCopy(t, dest, src, &Options{Progress: log.add})
			if res.BytesResumed != tc.want || res.ResumesDiscarded != 0 {
				t.Errorf("BytesResumed %d, ResumesDiscarded %d; want %d, 0", res.BytesResumed, res.ResumesDiscarded, tc.want)
			}
			started, done := log.of(EventBlobStarted, layer.digest()), log.of(EventBlobDone, layer.digest())
			if len(started) != 1 || started[0].Resumed != tc.source || len(done) != 1 || done[0].Resumed != tc.want {
				t.Errorf("events: started %+v, done %+v", started, done)
			}
			if got := src.lastSource().noResume; slices.Contains(got, true) {
				t.Errorf("GetBlob NoResume %v, want all false", got)
			}
		})
	}
}

// TestCopyDiscardsBadKeptData: a resumed stream that fails verification (kept bytes altered
// between runs), or a continued upload the destination refuses, is copied once more from the
// start with NoResume at both ends; the copy succeeds and says what happened.
func TestCopyDiscardsBadKeptData(t *testing.T) {
	t.Parallel()
	for _, side := range []string{"source", "destination"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			layer, other := makeLayer(t, 1, 20<<10, "gzip"), makeLayer(t, 2, 20<<10, "gzip")
			src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer, other)
			dest := newFakeRef("dest", newMemStore())
			if side == "source" {
				src.src.kept, src.src.keptCorrupt = map[digest.Digest]int64{layer.digest(): 4000}, true
			} else {
				dest.dest.held, dest.dest.heldRefused = map[digest.Digest]int64{layer.digest(): 4000}, true
			}
			var log eventLog
			res := mustCopy(t, dest, src, &Options{Progress: log.add})
			if res.ResumesDiscarded != 1 || res.BytesResumed != 0 {
				t.Errorf("ResumesDiscarded %d, BytesResumed %d; want 1, 0", res.ResumesDiscarded, res.BytesResumed)
			}
			if b, ok := dest.store.blob(layer.digest()); !ok || digest.FromBytes(b) != layer.digest() {
				t.Errorf("layer not stored intact")
			}
			if got := log.of(EventBlobResumeDiscarded, layer.digest()); len(got) != 1 || got[0].Err == nil {
				t.Errorf("resume-discarded events %+v, want one with the error", got)
			}
			if got := log.of(EventBlobFailed, layer.digest()); len(got) != 0 {
				t.Errorf("failed events %+v, want none", got)
			}
			if got := log.of(EventBlobStarted, layer.digest()); len(got) != 2 {
				t.Errorf("%d started events for the layer, want 2", len(got))
			}
			s, d := src.lastSource(), dest.lastDest()
			var layerNoResume []bool
			for i, dg := range s.getBlobs {
				if dg == layer.digest() {
					layerNoResume = append(layerNoResume, s.noResume[i])
				}
			}
			if !slices.Equal(layerNoResume, []bool{false, true}) {
				t.Errorf("layer fetched with NoResume %v, want [false true]", layerNoResume)
			}
			fresh := 0
			for _, o := range d.putOpts {
				if o.NoResume {
					fresh++
				}
			}
			if fresh != 1 {
				t.Errorf("%d PutBlob calls with NoResume, want 1 (the retry)", fresh)
			}
		})
	}
}

// TestCopyDoesNotRetryPlainMismatch: a stream that resumed nothing and fails verification is
// a failure, not a reason to fetch again.
func TestCopyDoesNotRetryPlainMismatch(t *testing.T) {
	t.Parallel()
	layer := makeLayer(t, 1, 20<<10, "gzip")
	src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
	src.src.corrupt = map[digest.Digest]bool{layer.digest(): true}
	dest := newFakeRef("dest", newMemStore())
	expectFailure(t, dest, src, nil)
	if n := slices.Index(src.lastSource().noResume, true); n >= 0 {
		t.Errorf("a plain mismatch was retried (GetBlob %d with NoResume)", n)
	}
}

// TestCopyDestinationKeeps: for a destination that keeps what it receives
// (types.PartialBlobKeeper), the source is told so for every blob stored as it comes, and gets
// the bytes the destination kept to start from; kept bytes that do not verify are discarded
// and the blob fetched again without them; a layer whose compression changes is not
// announced (what the destination keeps is not the source blob's bytes).
func TestCopyDestinationKeeps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		alter        bool
		ignore       bool // the source sends the whole blob again (a registry that ignores Range)
		compress     string
		wantResumed  int64
		wantPrefixes []int64
		wantKeeps    bool
	}{
		{name: "kept prefix used", wantResumed: 1000, wantPrefixes: []int64{1000}, wantKeeps: true},
		{name: "kept prefix altered", alter: true, wantPrefixes: []int64{1000, 0}, wantKeeps: true},
		// The destination wrote no byte again, but the network sent them all: none resumed.
		{name: "kept prefix not used by the source", ignore: true, wantPrefixes: []int64{1000}, wantKeeps: true},
		{name: "compression changes", compress: "zstd", wantPrefixes: []int64{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			layer := makeLayer(t, 1, 20<<10, "gzip")
			src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer)
			src.src.ignorePrefix = tc.ignore
			dest := newFakeRef("dest", newMemStore())
			prefix := slices.Clone(layer.blob[:1000])
			if tc.alter {
				prefix[100] ^= 0xff
			}
			dest.dest.keeps = map[digest.Digest][]byte{layer.digest(): prefix}
			res := mustCopy(t, dest, src, &Options{DestinationCompression: tc.compress})
			if res.BytesResumed != tc.wantResumed {
				t.Errorf("BytesResumed %d, want %d", res.BytesResumed, tc.wantResumed)
			}
			s := src.lastSource()
			var prefixes []int64
			for i, dg := range s.getBlobs {
				if dg == layer.digest() {
					prefixes = append(prefixes, s.prefixes[i])
				}
				if s.destKeeps[i] != tc.wantKeeps {
					t.Errorf("GetBlob of %s: DestinationKeeps %v, want %v", dg, s.destKeeps[i], tc.wantKeeps)
				}
			}
			if !slices.Equal(prefixes, tc.wantPrefixes) {
				t.Errorf("layer fetched with prefixes %v, want %v", prefixes, tc.wantPrefixes)
			}
			if tc.compress == "" {
				if b, ok := dest.store.blob(layer.digest()); !ok || digest.FromBytes(b) != layer.digest() {
					t.Errorf("layer not stored intact")
				}
			}
			if opened, closed := dest.dest.keptOpened.Load(), dest.dest.keptClosed.Load(); opened != closed {
				t.Errorf("%d kept prefixes handed out, %d closed", opened, closed)
			}
		})
	}
}

// TestCopyTransfersAgainWhenTheDestinationBrokeOff: a destination whose transfer broke off after
// it read the stream (types.StreamRetryError) gets the blob again from a new stream, with
// PutBlobOptions.Attempt counting the tries, and the copy says so with EventBlobRetried; the
// engine gives up after maxStreamRetries even if the destination does not, with the
// destination's error (network class).
func TestCopyTransfersAgainWhenTheDestinationBrokeOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		breaks int
		fails  bool
	}{
		{"twice", 2, false},
		{"always", 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			layer, other := makeLayer(t, 1, 20<<10, "gzip"), makeLayer(t, 2, 20<<10, "gzip")
			src, _ := newSingleSource(t, imgspecv1.MediaTypeImageManifest, layer, other)
			dest := newFakeRef("dest", newMemStore())
			dest.dest.breaks = map[digest.Digest]int{layer.digest(): tc.breaks}
			var log eventLog
			want := tc.breaks + 1
			if tc.fails {
				err := expectFailure(t, dest, src, &Options{Progress: log.add})
				if c := types.Classify(err); c != types.ClassNetwork {
					t.Errorf("error %v has class %v, want network", err, c)
				}
				want = maxStreamRetries + 1
			} else {
				mustCopy(t, dest, src, &Options{Progress: log.add})
				if b, ok := dest.store.blob(layer.digest()); !ok || digest.FromBytes(b) != layer.digest() {
					t.Errorf("layer not stored intact")
				}
				if got := log.of(EventBlobFailed, layer.digest()); len(got) != 0 {
					t.Errorf("failed events %+v, want none", got)
				}
			}
			var attempts []int
			for _, o := range dest.lastDest().putOpts {
				if o.LayerIndex == 0 {
					attempts = append(attempts, o.Attempt)
				}
			}
			if len(attempts) != want || attempts[0] != 0 || attempts[want-1] != want-1 {
				t.Errorf("PutBlob attempts %v, want 0..%d", attempts, want-1)
			}
			if got := log.of(EventBlobRetried, layer.digest()); len(got) != want-1 || got[0].Err == nil {
				t.Errorf("%d retried events (first %+v), want %d with the error", len(got), got, want-1)
			}
			if got := src.lastSource().getBlobs; countOf(got, layer.digest()) != want {
				t.Errorf("layer fetched %d times, want %d", countOf(got, layer.digest()), want)
			}
		})
	}
}

func countOf(ds []digest.Digest, d digest.Digest) int {
	n := 0
	for _, x := range ds {
		if x == d {
			n++
		}
	}
	return n
}
