package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

type span struct{ off, n int64 }

// recordWriteback replaces startWriteback for one test and returns a function that waits for
// the requests made so far and returns the ranges asked for. Tests using it are not parallel.
func recordWriteback(t *testing.T) func() []span {
	var got []span
	waitWriteback()
	orig := startWriteback
	startWriteback = func(f *os.File, off, n int64) error {
		got = append(got, span{off, n})
		return nil
	}
	t.Cleanup(func() {
		waitWriteback()
		startWriteback = orig
	})
	return func() []span {
		waitWriteback()
		return slices.Clone(got)
	}
}

// waitWriteback returns once the background goroutine handled every request queued before.
func waitWriteback() {
	done := make(chan struct{})
	writebackQueue <- writeback{done: done}
	startFlusher()
	<-done
}

func TestFlushBehindStartsWritebackPerChunk(t *testing.T) {
	got := recordWriteback(t)
	f := tempFile(t)
	w := NewFlushBehind(f, 0)
	piece := bytes.Repeat([]byte{'x'}, 3<<20)
	for i := 0; i < 6; i++ { // 18 MiB: two full chunks (at 9 and 18 MiB), nothing for the tail
		if _, err := w.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	want := []span{{0, 9 << 20}, {9 << 20, 9 << 20}}
	if len(got()) != len(want) || got()[0] != want[0] || got()[1] != want[1] {
		t.Fatalf("writeback ranges %v, want %v", got(), want)
	}
	if fi, _ := f.Stat(); fi.Size() != 18<<20 {
		t.Fatalf("file has %d bytes", fi.Size())
	}
}

func TestFlushBehindStartsAtGivenOffset(t *testing.T) {
	got := recordWriteback(t)
	f := tempFile(t)
	w := NewFlushBehind(f, 100)
	if _, err := w.Write(make([]byte, flushChunk)); err != nil {
		t.Fatal(err)
	}
	if len(got()) != 1 || got()[0] != (span{100, flushChunk}) {
		t.Fatalf("writeback ranges %v, want [{100 %d}]", got(), flushChunk)
	}
}

func TestStartWritebackOnRealFile(t *testing.T) {
	f := tempFile(t)
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := startWriteback(f, 0, 1<<20); err != nil {
		t.Fatalf("startWriteback on %s: %v", runtime.GOOS, err)
	}
	f.Close()
	if err := startWriteback(f, 0, 1<<20); err == nil && runtime.GOOS == "linux" {
		t.Fatal("startWriteback on a closed file succeeded")
	}
}

func TestFlushBehindAtLeavesFilePosition(t *testing.T) {
	got := recordWriteback(t)
	f := tempFile(t)
	if _, err := f.Write([]byte("head")); err != nil {
		t.Fatal(err)
	}
	w := NewFlushBehindAt(f, 100)
	if _, err := w.Write(bytes.Repeat([]byte{'r'}, flushChunk)); err != nil {
		t.Fatal(err)
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 4 {
		t.Fatalf("file position moved to %d", pos)
	}
	b := make([]byte, 2)
	if _, err := f.ReadAt(b, 100); err != nil || string(b) != "rr" {
		t.Fatalf("read %q at 100 (%v)", b, err)
	}
	if len(got()) != 1 || got()[0] != (span{100, flushChunk}) {
		t.Fatalf("writeback ranges %v", got())
	}
}

func TestFlushBehindFinishRequestsTail(t *testing.T) {
	got := recordWriteback(t)
	f := tempFile(t)
	w := NewFlushBehind(f, 0)
	if _, err := w.Write(make([]byte, flushChunk+100)); err != nil {
		t.Fatal(err)
	}
	w.Finish()
	w.Finish() // nothing new: no second request
	want := []span{{0, flushChunk + 100}}
	if r := got(); !slices.Equal(r, want) {
		t.Fatalf("writeback ranges %v, want %v", r, want)
	}
}

// tempFile creates a file in a test directory, closed at the end of the test.
func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestFlusherExitsWhenIdle checks that the goroutine serving writeback requests does not
// outlive them: a library that leaves a goroutine behind after a copy fails the goroutine
// leak checks of the programs embedding it.
func TestFlusherExitsWhenIdle(t *testing.T) {
	got := recordWriteback(t)
	f := tempFile(t)
	w := NewFlushBehind(f, 0)
	if _, err := w.Write(make([]byte, flushChunk)); err != nil {
		t.Fatal(err)
	}
	if len(got()) != 1 {
		t.Fatalf("writeback ranges %v, want one", got())
	}
	deadline := time.Now().Add(10 * time.Second)
	for flusherRunning() {
		if time.Now().After(deadline) {
			t.Fatal("the writeback goroutine still runs with nothing queued")
		}
		time.Sleep(time.Millisecond)
	}
	// It comes back for the next request.
	if _, err := w.Write(make([]byte, flushChunk)); err != nil {
		t.Fatal(err)
	}
	if len(got()) != 2 {
		t.Fatalf("writeback ranges %v, want two", got())
	}
}

// flusherRunning says whether a goroutine serving writebackQueue exists, by its stack (so
// that the check does not depend on how the package tracks it).
func flusherRunning() bool {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return strings.Contains(stacks, "atomicfile.serveWriteback(") || strings.Contains(stacks, "atomicfile.startFlusher.func")
}

// recordDataSyncs replaces dataSync for one test: each call sends its file on the returned
// channel, then blocks until the test sends on release. Tests using it are not parallel.
func recordDataSyncs(t *testing.T) (started <-chan *os.File, release chan<- struct{}) {
	s, r := make(chan *os.File, 8), make(chan struct{}, 8)
	orig := dataSync
	dataSync = func(f *os.File) error {
		s <- f
		<-r
		return nil
	}
	t.Cleanup(func() { dataSync = orig })
	return s, r
}

func TestSyncBehindSyncsEveryChunkOneAtATime(t *testing.T) {
	_ = recordWriteback(t)
	started, release := recordDataSyncs(t)
	f := tempFile(t)
	w := NewFlushBehind(f, 0).SyncBehind()
	chunk := make([]byte, syncChunk)
	if _, err := w.Write(chunk[:syncChunk-1]); err != nil {
		t.Fatal(err)
	}
	if n := len(syncsBehind); n != 0 {
		t.Fatalf("%d data syncs started before a whole chunk was written", n)
	}
	if _, err := w.Write(chunk[:1]); err != nil {
		t.Fatal(err)
	}
	if got := <-started; got != f {
		t.Fatalf("data sync of %v, want %v", got.Name(), f.Name())
	}
	// A second chunk while the first sync runs starts none: one at a time per file.
	if _, err := w.Write(chunk); err != nil {
		t.Fatal(err)
	}
	if n := len(syncsBehind); n != 1 {
		t.Fatalf("%d data syncs running, want 1", n)
	}
	release <- struct{}{}
	w.Wait()
	// The first Write after the sync returned starts the next one.
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if got := <-started; got != f {
		t.Fatalf("data sync of %v, want %v", got.Name(), f.Name())
	}
	release <- struct{}{}
	w.Wait()
	if n := len(syncsBehind); n != 0 {
		t.Fatalf("%d data syncs running after Wait, want 0", n)
	}
}

func TestFlushBehindWithoutSyncBehindSyncsNothing(t *testing.T) {
	_ = recordWriteback(t)
	started, _ := recordDataSyncs(t)
	w := NewFlushBehind(tempFile(t), 0)
	if _, err := w.Write(make([]byte, 2*syncChunk)); err != nil {
		t.Fatal(err)
	}
	if n := len(syncsBehind) + len(started); n != 0 {
		t.Fatalf("%d data syncs without SyncBehind", n)
	}
}

func TestDataSyncOnRealFile(t *testing.T) {
	f := tempFile(t)
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := dataSync(f); err != nil {
		t.Fatal(err)
	}
}

func TestWriteTempSyncsBehindAndPublishWaits(t *testing.T) {
	_ = recordWriteback(t)
	started, release := recordDataSyncs(t)
	dir := t.TempDir()
	tmp, err := writeTemp(dir, bytes.NewReader(make([]byte, syncChunk+1)), "", syncChunk+1, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(syncsBehind); n != 1 {
		t.Fatalf("%d data syncs running while the blob was written, want 1", n)
	}
	<-started
	release <- struct{}{}
	if err := tmp.publish(filepath.Join(dir, "blob"), 0, true); err != nil {
		t.Fatal(err)
	}
	if n := len(syncsBehind); n != 0 {
		t.Fatalf("%d data syncs still running after publish, want 0", n)
	}
}

// A failed background sync must fail the publish: the error is reported once per descriptor,
// so the blob's own fsync through the same descriptor could succeed although the data was lost.
func TestPublishFailsWhenASyncBehindFailed(t *testing.T) {
	_ = recordWriteback(t)
	eio := errors.New("input/output error")
	orig := dataSync
	dataSync = func(*os.File) error { return eio }
	t.Cleanup(func() { dataSync = orig })
	dir := t.TempDir()
	tmp, err := writeTemp(dir, bytes.NewReader(make([]byte, syncChunk+1)), "", syncChunk+1, true, true)
	if err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, "blob")
	if err := tmp.publish(final, 0, true); !errors.Is(err, eio) {
		t.Fatalf("publish: error %v, want the failed sync's", err)
	}
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Errorf("the blob was published after a failed sync (%v)", err)
	}
}
