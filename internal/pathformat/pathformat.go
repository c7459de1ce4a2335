// Package pathformat explains a path given to a transport of the other kind: a file to a
// transport of directories (oci:, dir:), a directory to a transport of tar files
// (docker-archive:, oci-archive:). Typing oci: for oci-archive: is a common slip; the error
// says what the path holds and which reference reads (or writes to) it, a
// types.WrongFormatError, instead of "not a directory".
package pathformat

import (
	"archive/tar"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// maxMembers bounds the tar members looked at: their contents are skipped (seeks), so this is
// a bound on reads of headers, not on bytes.
const maxMembers = 100000

// FileNotDirectory returns the error for transport (e.g. "oci"), which reads and writes
// directories, given p, a file (writing: as a destination): a types.WrongFormatError naming
// the archive reference for it when it is a tar of an OCI layout or of a docker save, else a
// usage error.
func FileNotDirectory(transport, p string, writing bool) error {
	err := errors.Errorf("%s is a file, not a directory", p)
	switch tarHolds(p) {
	case "oci":
		return &types.WrongFormatError{Err: err, Holds: "an OCI image layout in a tar", Use: "oci-archive:" + p, Writing: writing}
	case "docker":
		return &types.WrongFormatError{Err: err, Holds: "a docker save archive", Use: "docker-archive:" + p, Writing: writing}
	}
	return types.UsageError{Err: errors.Errorf("%s is a file, not a directory: %s: reads and writes directories (for a tar file, use docker-archive: or oci-archive:)", p, transport)}
}

// DirectoryNotArchive returns the error for transport (e.g. "docker-archive"), which reads and
// writes tar files, given p, a directory (writing: as a destination): a
// types.WrongFormatError naming the reference for it when it holds an OCI layout or a dir:
// image, else a usage error.
func DirectoryNotArchive(transport, p string, writing bool) error {
	err := errors.Errorf("%s is a directory, not a tar file", p)
	if exists(filepath.Join(p, "oci-layout")) {
		return &types.WrongFormatError{Err: err, Holds: "an OCI image layout", Use: "oci:" + p, Writing: writing}
	}
	if exists(filepath.Join(p, "manifest.json")) && exists(filepath.Join(p, "version")) {
		return &types.WrongFormatError{Err: err, Holds: "a dir: image", Use: "dir:" + p, Writing: writing}
	}
	return types.UsageError{Err: errors.Errorf("%s is a directory, not a tar file: %s: reads and writes tar files (for a directory, use oci: or dir:)", p, transport)}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// tarHolds tells what the uncompressed tar file p holds: "oci" (an oci-layout member), "docker"
// (a manifest.json member: a docker save; one with both is read as a docker save), or "" (not
// a tar, compressed, or neither).
func tarHolds(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	tr := tar.NewReader(f) // an *os.File: the reader seeks past the contents
	holds := ""
	for range maxMembers {
		h, err := tr.Next()
		if err != nil {
			break
		}
		switch path.Clean(h.Name) {
		case "manifest.json":
			return "docker"
		case "oci-layout":
			holds = "oci"
		}
	}
	return holds
}

// NotDirectory returns, for err from opening p as a directory, FileNotDirectory's error when p
// or one of its parents (a store's image below a file: dir:FILE/app:1) exists and is not a
// directory, else err.
func NotDirectory(transport, p string, writing bool, err error) error {
	if err == nil {
		return nil
	}
	for q := filepath.Clean(p); ; {
		fi, serr := os.Stat(q)
		if serr == nil && !fi.IsDir() {
			return FileNotDirectory(transport, q, writing)
		}
		if !errors.Is(serr, syscall.ENOTDIR) {
			return err
		}
		parent := filepath.Dir(q)
		if parent == q {
			return err
		}
		q = parent
	}
}
