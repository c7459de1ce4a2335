package tarstore

import (
	"bufio"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
)

// Destination is where an archive named by a path is written.
type Destination struct {
	// Path is the file Commit replaces: the path itself, or the regular file a symlink at the
	// path leads to (the symlink stays a symlink).
	Path string
	// Stream is set for a path that is not a regular file: a pipe, a terminal, a device, a
	// symlink into /proc (/dev/stdout) or one that leads nowhere yet. The archive is then
	// written into it whole at Commit (Options.Stream), not renamed over it: renaming onto
	// /dev/stdout replaced the symlink with a file and sent nothing down the pipe.
	Stream bool
}

// ResolveDestination decides how the archive named path is written. A directory is left to
// the caller to refuse.
func ResolveDestination(path string) (Destination, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Destination{Path: path}, nil
	case err != nil:
		return Destination{}, err
	case fi.Mode().IsRegular() || fi.IsDir():
		return Destination{Path: path}, nil
	case fi.Mode()&fs.ModeSymlink == 0: // a pipe, a device, a socket
		return Destination{Path: path, Stream: true}, nil
	}
	target, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist): // written through, creating its target
		return Destination{Path: path, Stream: true}, nil
	case err != nil:
		return Destination{}, err
	case target.IsDir():
		return Destination{Path: path}, nil
	case !target.Mode().IsRegular():
		return Destination{Path: path, Stream: true}, nil
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil || strings.HasPrefix(resolved, "/proc/") {
		// /dev/stdout redirected to a file: the process's own descriptor, not a file to replace.
		return Destination{Path: path, Stream: true}, nil
	}
	return Destination{Path: resolved}, nil
}

// streamLocked writes the finished tar, compressed as asked, into the archive's path whole;
// the caller holds mu.
func (s *Store) streamLocked() error {
	st, err := s.file.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	var w io.Writer = bw
	var zw io.WriteCloser
	if s.compression != "" {
		if zw, err = newCompressor(bw, s.compression); err != nil {
			out.Close()
			return err
		}
		w = zw
	}
	_, err = io.Copy(w, io.NewSectionReader(s.file, 0, st.Size()))
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Wrapf(err, "writing the archive into %s", s.path)
	}
	logrus.WithFields(logrus.Fields{"archive": s.path, "size": st.Size(), "compression": s.compression}).Debug("archive streamed")
	s.done = true
	s.file.Close()
	if err := s.staging.Remove(); err != nil {
		logrus.WithError(err).Warn("removing the staging directory of an archive")
	}
	s.dropAbandoned()
	return nil
}
