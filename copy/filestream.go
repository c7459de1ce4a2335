package copy

import (
	"io"
	"os"
	"sync"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/copybuf"
	"github.com/imgcopy/imgcopy/types"
)

// minFileBlob is the smallest blob offered to a destination as a file (types.FileBlob): below
// it, sending the file with sendfile(2) saves less than the side reading costs.
const minFileBlob = 512 << 10

// errFileTaken is what reading a stream whose file a destination took returns.
var errFileTaken = errors.New("blob stream read after its file was taken")

// errSideReadStopped ends the side reading of a taken file once its destination failed.
var errSideReadStopped = errors.New("side reading stopped: the destination failed")

// sendableFile returns the file a blob is read from when a destination may take it instead
// of the stream (types.FileBlob): a regular file of the blob's size that the source opened
// for this blob, at its start, with nothing kept from an earlier run, copied unchanged and
// needing no diff ID. Otherwise nil (a file of another size fails through the stream).
func sendableFile(rc io.ReadCloser, job *blobJob, info types.BlobInfo, kept *keptBytes) *os.File {
	f, ok := rc.(*os.File)
	if !ok || job.data != nil || kept.source != 0 || info.Digest == "" || info.Size < minFileBlob ||
		job.plan.Action != layerKeep || job.needDiffID {
		return nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != info.Size {
		return nil
	}
	if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 0 {
		return nil
	}
	return f
}

// fileStream is the stream of a blob that is a local file copied unchanged. The chain reads
// the file with ReadAt, so its offset stays at the blob's start for a destination that takes
// it (TakeFile); the chain is then drained on the side, which verifies the file (and reports
// progress) while the destination sends it.
type fileStream struct {
	chain *recordingReader
	f     *os.File
	size  int64

	mu    sync.Mutex
	read  bool
	taken bool
	done  chan struct{} // closed when the side reading ended; nil until taken
	stop  chan struct{} // closed to end the side reading early
	err   error         // of the side reading, once done
}

// newFileStream returns the chain's source for f (which leaves f's offset alone) and the
// fileStream to complete with the chain once it is built.
func newFileStream(f *os.File, size int64) (io.Reader, *fileStream) {
	// One byte more than the blob, so that a longer file fails the size check.
	return io.NewSectionReader(f, 0, size+1), &fileStream{f: f, size: size}
}

func (s *fileStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	if s.taken {
		s.mu.Unlock()
		return 0, errFileTaken
	}
	s.read = true
	s.mu.Unlock()
	return s.chain.Read(p)
}

// TakeFile implements types.FileBlob.
func (s *fileStream) TakeFile() (*os.File, int64, func() error, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read || s.taken {
		return nil, 0, nil, false
	}
	s.taken = true
	s.done, s.stop = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		_, s.err = copybuf.Copy(io.Discard, stoppable{r: s.chain, stop: s.stop})
	}()
	return s.f, s.size, s.verified, true
}

// stoppable reads r until stop is closed. The stop is not the chain's error: the chain
// records only what happened to the blob.
type stoppable struct {
	r    io.Reader
	stop <-chan struct{}
}

func (s stoppable) Read(p []byte) (int, error) {
	select {
	case <-s.stop:
		return 0, errSideReadStopped
	default:
		return s.r.Read(p)
	}
}

// verified waits for the side reading and returns its error.
func (s *fileStream) verified() error {
	<-s.done
	return s.err
}

// finish is called once PutBlob returned. For a taken file it waits for the side reading,
// so that the chain's verdict is known; when PutBlob failed, it first stops the side reading
// at the next piece (the destination's error is then reported, unless the chain had failed
// already): a registry that refused a 10 GiB upload is not kept waiting for 6 s of hashing.
func (s *fileStream) finish(failed bool) {
	s.mu.Lock()
	done, stop := s.done, s.stop
	s.mu.Unlock()
	if done == nil {
		return
	}
	if failed {
		close(stop)
	}
	<-done
}
