package tarstore

import (
	"bufio"
	"io"
	"os"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/staging"
)

// compress writes the finished tar, compressed, to a new temporary file beside the archive and
// returns it (open). The tar is built uncompressed first because blobs are written into it out
// of order; compressing it is one sequential pass, on every core.
func (s *Store) compress() (*os.File, error) {
	out, err := staging.CreateTemp(s.staging.Path, staging.ReplacementPattern(s.path))
	if err != nil {
		return nil, errors.Wrapf(err, "creating compressed archive %s", s.path)
	}
	fail := func(err error) (*os.File, error) {
		out.Close()
		os.Remove(out.Name())
		return nil, errors.Wrapf(err, "compressing archive %s with %s", s.path, s.compression)
	}
	st, err := s.file.Stat()
	if err != nil {
		return fail(err)
	}
	bw := bufio.NewWriterSize(atomicfile.NewFlushBehind(out, 0), 1<<20)
	zw, err := newCompressor(bw, s.compression)
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(zw, io.NewSectionReader(s.file, 0, st.Size())); err != nil {
		zw.Close()
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	logrus.WithFields(logrus.Fields{"archive": s.path, "compression": s.compression, "size": st.Size()}).Debug("compressed archive")
	return out, nil
}

func newCompressor(w io.Writer, compression string) (io.WriteCloser, error) {
	switch compression {
	case "gzip":
		zw := pgzip.NewWriter(w)
		return zw, zw.SetConcurrency(1<<20, max(runtime.GOMAXPROCS(0), 1))
	case "zstd":
		return zstd.NewWriter(w)
	}
	return nil, errors.Errorf("unknown archive compression %q", compression)
}
