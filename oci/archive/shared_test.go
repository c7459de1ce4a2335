package archive

import (
	"context"

	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/fileid"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// backdate sets the modification time of path to one in 2023, as for any archive not
// written a moment ago (see fileid.Stable).
func backdate(t *testing.T, path string) {
	t.Helper()
	old := time.Unix(1_700_000_000, 0)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// memberID returns the fileid.ID the archive's file system gives a member.
func memberID(t *testing.T, path, member string) fileid.ID {
	t.Helper()
	a, err := openArchive(context.Background(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fi, err := fs.Stat(a.fsys(), member)
	if err != nil {
		t.Fatal(err)
	}
	return fileid.Of(fi)
}

// TestMemberIDs: the members of an archive have IDs (so that its index.json is read once
// while the images of the archive are opened one by one) that stay the same over opens of
// the archive and differ from member to member.
func TestMemberIDs(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.tar")
	mustWrite(t, mustRef(t, path, "v1"), testImage(t, "amd64"))
	backdate(t, path)
	index := memberID(t, path, layout.IndexFile)
	if index.IsZero() || index != memberID(t, path, layout.IndexFile) {
		t.Fatalf("index.json of one archive has the IDs %+v and %+v, want one, not zero", index, memberID(t, path, layout.IndexFile))
	}
	if marker := memberID(t, path, layout.LayoutFile); marker == index {
		t.Errorf("oci-layout and index.json have the same ID %+v", marker)
	}
}

// TestArchiveReplacedBetweenOpens: an archive replaced by rename between two opens, with the
// same size and time, is read again, its tar headers and its index.json.
func TestArchiveReplacedBetweenOpens(t *testing.T) {
	// Not parallel: other archives opened between the two opens would push the first one
	// out of the caches, and the test could not fail.
	dir := t.TempDir()
	path, other := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	first, second := testImage(t, "amd64"), testImage(t, "arm64")
	mustWrite(t, mustRef(t, path, "aa"), first)
	mustWrite(t, mustRef(t, other, "bb"), second)
	fa, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fb, err := os.Stat(other); err != nil || fb.Size() != fa.Size() {
		t.Fatalf("the two archives differ in size (%v): the test needs them the same", err)
	}
	backdate(t, path)
	backdate(t, other)
	checkReadable(t, mustRef(t, path, "aa"), first)
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	checkReadable(t, mustRef(t, path, "bb"), second)
	src, err := mustRef(t, path, "aa").NewImageSource(t.Context(), nil)
	if err == nil {
		src.Close()
	}
	if !errors.Is(err, types.ErrManifestNotFound) {
		t.Errorf("opening the image the replaced archive had: %v, want ErrManifestNotFound", err)
	}
}
