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

// sendableFile returns the file a blob is read from when a destination may take it instead
// of the stream (types.FileBlob): a regular file the source opened for this blob, at its
// start, with nothing kept from an earlier run, copied unchanged and needing no diff ID.
// Otherwise nil.
func sendableFile(rc io.ReadCloser, job *blobJob, info types.BlobInfo, kept *keptBytes) *os.File {
	f, ok := rc.(*os.File)
	if !ok || job.data != nil || kept.source != 0 || info.Digest == "" || info.Size < minFileBlob ||
		job.plan.Action != layerKeep || job.needDiffID {
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
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_, s.err = copybuf.Copy(io.Discard, s.chain)
	}()
	return s.f, s.size, s.verified, true
}

// verified waits for the side reading and returns its error.
func (s *fileStream) verified() error {
	<-s.done
	return s.err
}

// wait waits for the side reading of a taken file, so that the chain's verdict is known once
// PutBlob returned (whatever the destination did). A cancelled copy stops it at the next
// piece.
func (s *fileStream) wait() {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done != nil {
		<-done
	}
}
