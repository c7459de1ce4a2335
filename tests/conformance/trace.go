package conformance

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// DirSnapshot describes the tree under dir for Harness.Snapshot: one line per file,
// directory and symlink with its path relative to dir, its type and, for files, its size.
// A dir that does not exist gives "". Transports that keep an image in a file or a
// directory pass the directory that holds it (e.g. filepath.Dir of its path), so that
// temporary files created next to it are seen too.
func DirSnapshot(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		switch {
		case e.Type().IsRegular():
			info, err := e.Info()
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%s %d", filepath.ToSlash(rel), info.Size()))
		case e.IsDir():
			lines = append(lines, filepath.ToSlash(rel)+"/")
		default:
			lines = append(lines, fmt.Sprintf("%s (%s)", filepath.ToSlash(rel), e.Type()))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// snapshot returns h.Snapshot(ref), or "" and false when the harness has none.
func (s *suite) snapshot(t *testing.T, ref types.ImageReference) (string, bool) {
	t.Helper()
	if s.h.Snapshot == nil {
		return "", false
	}
	return s.h.Snapshot(t, ref), true
}

// emptySessionSnapshot opens a destination at ref, closes it unused and returns the
// snapshot of what that left: the state a failed session must leave too.
func (s *suite) emptySessionSnapshot(t *testing.T, ref types.ImageReference) (string, bool) {
	t.Helper()
	if s.h.Snapshot == nil {
		return "", false
	}
	closeDest(t, s.openDest(t, ref))
	return s.snapshot(t, ref)
}

// assertNoTrace compares the snapshot of ref with want, taken by emptySessionSnapshot.
func (s *suite) assertNoTrace(t *testing.T, ref types.ImageReference, want string, ok bool, what string) {
	t.Helper()
	if !ok {
		return
	}
	if got, _ := s.snapshot(t, ref); got != want {
		t.Errorf("%s left something behind in %s once the destination was closed:\n got:\n%s\nwant (after an empty session):\n%s",
			what, types.ImageName(ref), got, want)
	}
}
