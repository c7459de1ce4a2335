//go:build unix

package resume

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

func testDigest(i int) digest.Digest {
	return digest.FromBytes([]byte{byte(i), byte(i >> 8)})
}

func newStore(t *testing.T, maxAge time.Duration, maxSize int64) *Store {
	t.Helper()
	return New(&types.ResumeOptions{Dir: t.TempDir(), MaxAge: maxAge, MaxSize: maxSize})
}

func TestNewDefaultsAndOff(t *testing.T) {
	t.Parallel()
	if New(nil) != nil || New(&types.ResumeOptions{}) != nil {
		t.Fatal("a store without a directory must be nil (resuming off)")
	}
	s := New(&types.ResumeOptions{Dir: t.TempDir()})
	if s.maxAge != types.DefaultResumeMaxAge || s.maxSize != types.DefaultResumeMaxSize {
		t.Fatalf("defaults: %v %d", s.maxAge, s.maxSize)
	}
}

// TestPartialKeepsAcrossOpens: what one opener records, the next one gets back, whole and
// in order; a complete download removes the file.
func TestPartialKeepsAcrossOpens(t *testing.T) {
	t.Parallel()
	s := newStore(t, 0, 0)
	d := testDigest(1)
	data := bytes.Repeat([]byte("0123456789abcdef"), MinSize/8) // 2 MiB
	p, err := s.OpenPartial(d, int64(len(data)))
	if err != nil || p == nil {
		t.Fatalf("OpenPartial: %v, %v", p, err)
	}
	if p.Kept() != 0 {
		t.Fatalf("new partial keeps %d bytes", p.Kept())
	}
	for i := 0; i < 600_000; i += 1000 {
		p.Record(data[i : i+1000])
	}
	if err := p.Close(false); err != nil {
		t.Fatal(err)
	}
	p, err = s.OpenPartial(d, int64(len(data)))
	if err != nil || p == nil {
		t.Fatalf("reopen: %v, %v", p, err)
	}
	if p.Kept() != 600_000 {
		t.Fatalf("kept %d bytes, want 600000", p.Kept())
	}
	got, err := io.ReadAll(p.Reader())
	if err != nil || !bytes.Equal(got, data[:600_000]) {
		t.Fatalf("kept bytes differ (err %v)", err)
	}
	p.Record(data[600_000:])
	path := p.path
	if err := p.Close(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("complete partial still there: %v", err)
	}
}

func TestPartialDiscard(t *testing.T) {
	t.Parallel()
	s := newStore(t, 0, 0)
	d := testDigest(2)
	p, _ := s.OpenPartial(d, 2*MinSize)
	p.Record(bytes.Repeat([]byte{1}, 5000))
	p.Close(false)
	p, _ = s.OpenPartial(d, 2*MinSize)
	p.Discard()
	p.Record([]byte("abc"))
	p.Close(false)
	p, _ = s.OpenPartial(d, 2*MinSize)
	defer p.Close(false)
	got, _ := io.ReadAll(p.Reader())
	if string(got) != "abc" {
		t.Fatalf("after Discard and Record: %q", got)
	}
}

// TestPartialLockedByAnother: a second opener (another process, or another file in this one)
// gets nil while the first holds the partial download.
func TestPartialLockedByAnother(t *testing.T) {
	t.Parallel()
	s := newStore(t, 0, 0)
	d := testDigest(3)
	first, err := s.OpenPartial(d, 2*MinSize)
	if err != nil || first == nil {
		t.Fatal(err)
	}
	if second, err := s.OpenPartial(d, 2*MinSize); second != nil || err != nil {
		t.Fatalf("second OpenPartial while held = %v, %v; want nil, nil", second, err)
	}
	first.Close(false)
	second, err := s.OpenPartial(d, 2*MinSize)
	if err != nil || second == nil {
		t.Fatalf("OpenPartial after release = %v, %v", second, err)
	}
	second.Close(true)
}

func TestPartialNotKept(t *testing.T) {
	t.Parallel()
	s := newStore(t, 0, 4*MinSize)
	for _, size := range []int64{-1, 0, MinSize - 1, 4*MinSize + 1} {
		if p, err := s.OpenPartial(testDigest(4), size); p != nil || err != nil {
			t.Errorf("size %d: %v, %v; want nil, nil (not kept)", size, p, err)
		}
	}
	if _, err := s.OpenPartial("sha256:nothex", 2*MinSize); err == nil {
		t.Error("an invalid digest must be refused (it names a file)")
	}
}

// writeKept leaves a partial download of n bytes, last written at mod.
func writeKept(t *testing.T, s *Store, i int, n int64, mod time.Time) string {
	t.Helper()
	p, err := s.OpenPartial(testDigest(i), MinSize)
	if err != nil || p == nil {
		t.Fatal(err)
	}
	p.Record(make([]byte, n))
	path := p.path
	p.Close(false)
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPruneByAgeAndSize: files older than the limit go; then the oldest until the rest fits;
// a file in use stays whatever its age.
func TestPruneByAgeAndSize(t *testing.T) {
	t.Parallel()
	s := newStore(t, time.Hour, 10*MinSize) // limit lowered once the files are there
	now := time.Now()
	old := writeKept(t, s, 10, 1000, now.Add(-2*time.Hour))
	oldest := writeKept(t, s, 11, MinSize, now.Add(-50*time.Minute))
	middle := writeKept(t, s, 12, MinSize, now.Add(-40*time.Minute))
	newest := writeKept(t, s, 13, MinSize, now.Add(-30*time.Minute))
	busy, err := s.OpenPartial(testDigest(14), MinSize) // in use, made old below
	if err != nil || busy == nil {
		t.Fatal(err)
	}
	defer busy.Close(false)
	busy.Record(make([]byte, 10))
	busy.w.Flush()
	os.Chtimes(busy.path, now.Add(-3*time.Hour), now.Add(-3*time.Hour))

	s.maxSize = 3*MinSize + 10
	s.prune(MinSize) // room for one more blob: 3 kept + 1 reserved > 3 MiB
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if exists(old) {
		t.Error("a file older than the age limit was kept")
	}
	if exists(oldest) {
		t.Error("the oldest partial download was kept though the size limit needed room")
	}
	if !exists(middle) || !exists(newest) {
		t.Error("pruning removed more than needed")
	}
	if !exists(busy.path) {
		t.Error("a partial download in use was pruned")
	}
}

func TestUploadRecord(t *testing.T) {
	t.Parallel()
	s := newStore(t, 0, 0)
	d := testDigest(20)
	u, err := s.OpenUpload("reg.example:5000", "team/app", d)
	if err != nil || u == nil {
		t.Fatal(err)
	}
	if _, ok := u.Record(); ok {
		t.Fatal("a new record has a session")
	}
	rec := UploadRecord{Registry: "reg.example:5000", Repository: "team/app", Digest: d, Size: 10 << 20, Location: "http://reg.example:5000/v2/team/app/blobs/uploads/x?_state=y", Offset: 4096}
	if err := u.Save(rec); err != nil {
		t.Fatal(err)
	}
	if other, err := s.OpenUpload("reg.example:5000", "team/app", d); other != nil || err != nil {
		t.Fatalf("second OpenUpload while held = %v, %v", other, err)
	}
	u.Close()
	u, _ = s.OpenUpload("reg.example:5000", "team/app", d)
	got, ok := u.Record()
	if !ok || got != rec {
		t.Fatalf("record = %+v, %v; want %+v", got, ok, rec)
	}
	u.Forget()
	path := u.path
	u.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a forgotten record is still on disk: %v", err)
	}
	// Another repository's record is another file.
	u, _ = s.OpenUpload("reg.example:5000", "team/other", d)
	defer u.Close()
	if _, ok := u.Record(); ok {
		t.Fatal("the record of another repository was returned")
	}
	entries, _ := os.ReadDir(filepath.Join(s.dir, uploadsDir))
	if len(entries) != 1 {
		t.Fatalf("%d files in uploads/, want 1", len(entries))
	}
}

func TestUploadRecordCorruptIgnored(t *testing.T) {
	t.Parallel()
	s := newStore(t, 0, 0)
	d := testDigest(21)
	u, _ := s.OpenUpload("r", "a", d)
	path := u.path
	u.Save(UploadRecord{Registry: "r", Repository: "a", Digest: d, Location: "http://r/x"})
	u.Close()
	if err := os.WriteFile(path, []byte(`{"registry":"r","repo`), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ = s.OpenUpload("r", "a", d)
	defer u.Close()
	if _, ok := u.Record(); ok {
		t.Fatal("a truncated record was trusted")
	}
}

// TestReservePrunesOnlyWhenNeeded: the directory is pruned by the first reservation, then only
// when the bytes reserved since might overflow the size limit, not once per blob.
func TestReservePrunesOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	s := newStore(t, time.Hour, 4*MinSize)
	s.reserve("", MinSize) // first: prunes (nothing there yet)
	stale := writeKept(t, s, 30, 1000, time.Now().Add(-2*time.Hour))
	s.reserve("", MinSize) // 2 MiB reserved of 4: fits, the directory is not listed
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("a reservation that fits pruned the directory: %v", err)
	}
	s.reserve("", 3*MinSize) // might overflow: prunes, and finds the stale file
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("a reservation that may overflow did not prune: %v", err)
	}
}

// TestPartialRecordsLargePiecesUnbuffered: pieces of directRecordSize and more go to the file
// without a buffer (no copy of every downloaded byte); smaller ones are gathered, and a mix of
// both is kept whole and in order.
func TestPartialRecordsLargePiecesUnbuffered(t *testing.T) {
	t.Parallel()
	s := newStore(t, 0, 0)
	d := testDigest(7)
	data := make([]byte, 2*MinSize)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	p, err := s.OpenPartial(d, int64(len(data)))
	if err != nil || p == nil {
		t.Fatalf("OpenPartial: %v, %v", p, err)
	}
	pieces := []int{256 << 10, 256 << 10, 100, directRecordSize + 5, 256 << 10, 10, directRecordSize}
	off := 0
	for i, n := range pieces {
		p.Record(data[off : off+n])
		off += n
		if i == 1 && p.w != nil {
			t.Fatal("large pieces went through a buffer")
		}
	}
	if err := p.Close(false); err != nil {
		t.Fatal(err)
	}
	p, err = s.OpenPartial(d, int64(len(data)))
	if err != nil || p == nil {
		t.Fatalf("reopen: %v, %v", p, err)
	}
	defer p.Close(false)
	got, err := io.ReadAll(p.Reader())
	if err != nil || !bytes.Equal(got, data[:off]) {
		t.Fatalf("kept %d bytes, want the %d recorded, in order (err %v)", len(got), off, err)
	}
}

// TestOpenPartialOnlyOwnRegularFiles: a partial download that is a symbolic link, a FIFO or
// a directory, or a resume directory other users may write to, is not used: OpenPartial
// fails (its callers then fetch without keeping), never writes or truncates the file a
// link points to, and never blocks on a FIFO.
func TestOpenPartialOnlyOwnRegularFiles(t *testing.T) {
	t.Parallel()
	d := testDigest(7)
	const victimText = "a file outside the resume directory"
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, dir, path, victim string)
	}{
		{"symlink", func(t *testing.T, _, path, victim string) { must(t, os.Symlink(victim, path)) }},
		{"fifo", func(t *testing.T, _, path, _ string) { must(t, syscall.Mkfifo(path, 0o600)) }},
		{"directory", func(t *testing.T, _, path, _ string) { must(t, os.MkdirAll(filepath.Join(path, "x"), 0o700)) }},
		{"directory others may write to", func(t *testing.T, dir, _, _ string) { must(t, os.Chmod(dir, 0o777)) }},
		{"blobs directory others may write to", func(t *testing.T, dir, _, _ string) { must(t, os.Chmod(filepath.Join(dir, blobsDir), 0o777)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			victim := filepath.Join(t.TempDir(), "victim")
			must(t, os.WriteFile(victim, []byte(victimText), 0o600))
			must(t, os.MkdirAll(filepath.Join(dir, blobsDir), 0o700))
			tc.plant(t, dir, filepath.Join(dir, blobsDir, partialName(d)), victim)
			s := New(&types.ResumeOptions{Dir: dir})
			if s.HasPartial(d) {
				t.Error("HasPartial: true")
			}
			p, err := s.OpenPartial(d, MinSize)
			if err == nil || p != nil {
				p.Discard()
				p.Record([]byte("blob bytes"))
				p.Close(false)
				t.Errorf("OpenPartial: %v, %v; want an error", p != nil, err)
			}
			if b, err := os.ReadFile(victim); err != nil || string(b) != victimText {
				t.Errorf("the file the link points to now holds %q (%v)", b, err)
			}
		})
	}
}

// TestResumeDirectoryMayBeALink: a resume directory that is a symbolic link to a private
// directory of the user's is used.
func TestResumeDirectoryMayBeALink(t *testing.T) {
	t.Parallel()
	link := filepath.Join(t.TempDir(), "resume")
	must(t, os.Symlink(t.TempDir(), link))
	p, err := New(&types.ResumeOptions{Dir: link}).OpenPartial(testDigest(8), MinSize)
	if err != nil || p == nil {
		t.Fatalf("OpenPartial: %v, %v", p, err)
	}
	p.Close(false)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestReopenedPartialIsNotPrunedForItself: the next run that continues a partial download
// reserves room for what the blob still lacks, not for the whole blob again on top of the
// bytes kept, and never prunes the file it continues to make that room: with the kept
// downloads within the size limit, nothing is pruned.
func TestReopenedPartialIsNotPrunedForItself(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := &types.ResumeOptions{Dir: dir, MaxAge: time.Hour, MaxSize: 4 * MinSize}
	first := New(opts)
	now := time.Now()
	big := writeKept(t, first, 40, 2*MinSize, now.Add(-20*time.Minute)) // of a 3*MinSize blob
	other := writeKept(t, first, 41, MinSize, now.Add(-10*time.Minute))

	next := New(opts) // the next run
	p, err := next.OpenPartial(testDigest(40), 3*MinSize)
	if err != nil || p == nil {
		t.Fatalf("OpenPartial: %v, %v", p, err)
	}
	defer p.Close(false)
	if p.Kept() != 2*MinSize {
		t.Errorf("the partial download keeps %d bytes, want the %d kept", p.Kept(), 2*MinSize)
	}
	for _, f := range []string{big, other} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("pruned %s although the kept downloads fit: %v", filepath.Base(f), err)
		}
	}
}
