package atomicfile

import (
	"io"
	"os"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
)

const (
	// syncWorkers bounds the fsyncs running at once. Concurrent fsyncs of one file system
	// share journal commits; the device flushes each one asks for are serialized anyway.
	syncWorkers = 8
	// maxPending bounds the staged files waiting for their fsync, each holding its descriptor:
	// staging more waits.
	maxPending = 64
)

// Syncer stages files and makes them durable in the background: a staged file is fsynced and
// only then renamed to its name, off the copy's path, so that each fsync (its writeback tail,
// journal commit and device flush: about 0.6 ms for a 1 MiB blob already written back on the
// 2-core VM of bench/) overlaps with the blobs still streaming, instead of holding the blob's
// slot or running in a row at commit. A file under its staged name is thus always complete,
// verified and durable, which lets a later run take it over (resume). Sync waits for them
// all. A Syncer is safe for concurrent use.
type Syncer struct {
	off     bool          // --fsync=false: nothing is synced, and no writeback requested
	pending chan struct{} // one per staged file not yet published
	workers chan struct{} // one per fsync running
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
	synced  map[string]bool // names published or synced by s
	stop    bool            // Close was called: what is not yet published is discarded
}

// NewSyncer returns an empty Syncer. With durable false it syncs nothing (the writer's
// --fsync=false, for scratch output: a crash or power loss may then leave files that are
// named but incomplete).
func NewSyncer(durable bool) *Syncer {
	return &Syncer{off: !durable, pending: make(chan struct{}, maxPending), workers: make(chan struct{}, syncWorkers), synced: map[string]bool{}}
}

// StageBlob streams r into a temp file in dir, hashing as it goes unless trusted (r is
// verified by the caller, see verify.NewPutReader), and checks it against expected (when
// given) and size (when >= 0); the fsync and the rename to name(d) are done in the
// background. It returns the digest and size once the blob is written and verified. The name appears at the latest when Sync
// returns, and never for a blob that failed. perm, unless 0, replaces the temporary file's
// mode (0600).
func (s *Syncer) StageBlob(dir string, r io.Reader, expected digest.Digest, size int64, trusted bool, perm os.FileMode, name func(digest.Digest) string) (digest.Digest, int64, error) {
	t, err := writeTemp(dir, r, expected, size, trusted, !s.off)
	if err != nil {
		return "", -1, err
	}
	final := name(t.digest)
	if s.off {
		if err := t.publish(final, perm, false); err != nil {
			return "", -1, err
		}
		return t.digest, t.size, nil
	}
	s.background(final, t.discard, func() error { return t.publish(final, perm, true) })
	return t.digest, t.size, nil
}

// StageFile writes data to path atomically, the fsync and rename done in the background like
// StageBlob's.
func (s *Syncer) StageFile(path string, data []byte, perm os.FileMode) error {
	if s.off {
		return writeFile(path, data, perm, false)
	}
	data = append([]byte(nil), data...) // the caller may reuse it once StageFile returned
	s.background(path, func() {}, func() error { return writeFile(path, data, perm, true) })
	return nil
}

// WriteFile is WriteFile, without the fsync when s syncs nothing.
func (s *Syncer) WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, !s.off)
}

// Durable reports whether s makes what it writes durable (false: --fsync=false).
func (s *Syncer) Durable() bool { return !s.off }

// SyncDir is SyncDir, or nothing when s syncs nothing.
func (s *Syncer) SyncDir(path string) error {
	if s.off {
		return nil
	}
	return SyncDir(path)
}

// background runs publish (fsync and rename to name) on its own goroutine, or discard once
// Close was called.
func (s *Syncer) background(name string, discard func(), publish func() error) {
	s.pending <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.pending }()
		s.workers <- struct{}{}
		defer func() { <-s.workers }()
		s.mu.Lock()
		stop := s.stop
		s.mu.Unlock()
		if stop {
			discard()
			return
		}
		err := publish()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.synced[name] = true
		if err != nil && s.err == nil {
			s.err = err
		}
	}()
}

// Sync returns once every staged file is durable under its name, and every file in paths
// (named by others, e.g. taken over from an interrupted run), then syncs the directories in
// dirs, in order, one at a time (a directory's fsync makes the names in it durable: list a new
// directory before its parent). It returns the first error.
func (s *Syncer) Sync(paths []string, dirs []string) error {
	s.wg.Wait()
	if s.off {
		return nil
	}
	s.mu.Lock()
	err := s.err
	var todo []string
	for _, p := range paths {
		if !s.synced[p] {
			todo = append(todo, p)
			s.synced[p] = true
		}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := syncFiles(todo); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Close discards the staged files not yet published (their writer is abandoning them) and
// waits for the fsyncs under way.
func (s *Syncer) Close() {
	s.mu.Lock()
	s.stop = true
	s.mu.Unlock()
	s.wg.Wait()
}

func syncFiles(paths []string) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan string)
	)
	for i := 0; i < min(syncWorkers, len(paths)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := syncFile(p); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range paths {
		next <- p
	}
	close(next)
	wg.Wait()
	return first
}

// syncFile fsyncs the file at path through a new read-only descriptor: an fsync writes the
// file's dirty pages and inode whichever descriptor wrote them.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.Wrapf(err, "syncing %s", path)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return errors.Wrapf(err, "syncing %s", path)
}
