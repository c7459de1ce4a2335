//go:build unix

package tarstore

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/types"
)

// TestSalvage: a store created with Resume takes the complete, intact blobs of a tar that a
// killed writer left unfinished (after a gap of zeros, too), refuses an altered one, and
// removes the dead writer's staging directory when it ends.
func TestSalvage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, gap, altered := bytes.Repeat([]byte("g"), 3000), bytes.Repeat([]byte("p"), 700), bytes.Repeat([]byte("a"), 1000)
	dead := filepath.Join(dir, staging.LayoutPrefix+"killed") // its lock file is not held
	if err := os.Mkdir(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	member := func(b []byte, content []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "blobs/sha256/" + digest.FromBytes(b).Encoded(), Size: int64(len(content)), Format: tar.FormatPAX})
		tw.Write(content)
		tw.Flush()
	}
	member(good, good)
	buf.Write(make([]byte, 4096)) // a region reserved for a blob that never finished
	member(gap, gap)
	member(altered, bytes.ToUpper(altered))
	for name, b := range map[string][]byte{".lock": nil, "unfinished.tar": buf.Bytes()} {
		if err := os.WriteFile(filepath.Join(dead, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	s, err := Create(filepath.Join(dir, "out.tar"), Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		b    []byte
		want bool
	}{{good, true}, {gap, true}, {altered, false}, {[]byte("never written"), false}} {
		d := digest.FromBytes(tc.b)
		b, ok := s.Salvage(ctx, d, int64(len(tc.b)), "blobs/sha256/"+d.Encoded())
		if ok != tc.want || (ok && b.Size != int64(len(tc.b))) {
			t.Errorf("Salvage(%.10q) = %+v, %v; want %v", tc.b, b, ok, tc.want)
		}
		if ok {
			got, err := s.ReadBlob(d, 1<<20)
			if err != nil || !bytes.Equal(got, tc.b) {
				t.Errorf("salvaged blob reads back as %.10q (%v)", got, err)
			}
		}
	}
	if err := s.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead writer's staging directory is still there: %v", err)
	}
}

// cancelAfter serves data, and once n bytes went by calls atBreak, then cancels the context
// and fails as a reader of a cancelled stream does; with cancel nil it fails with a plain
// error instead.
type cancelAfter struct {
	data    []byte
	n, off  int
	atBreak func()
	cancel  context.CancelFunc
}

var errBroke = errors.New("the stream broke")

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.off >= c.n {
		c.atBreak()
		if c.cancel == nil {
			return 0, errBroke
		}
		c.cancel()
		return 0, context.Canceled
	}
	k := copy(p, c.data[c.off:min(c.n, len(c.data))])
	c.off += k
	return k, nil
}

// TestKeepsBegunBlob: with Resume, what arrived of a blob whose Put breaks off is offered to
// the next store (KeepsPartial) as the blob's first bytes: from the unfinished tar and its
// fill record (a whole number of records' worth) when the writer was killed, from the blob's
// partial download in the resume directory (all of it) when the copy was interrupted (its
// context ended) or its stream broke off (the network was lost), in which case nothing is
// left beside the archive. A Put of the whole blob then removes the partial download; one
// that does not verify with the kept bytes empties it. A Put of bytes that do not verify, a
// small blob and a store without Resume keep nothing.
func TestKeepsBegunBlob(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), (resume.MinSize+3*fillRecordEvery/2)/16)
	d := digest.FromBytes(big)
	size := int64(len(big))
	const failAt = 2*fillRecordEvery + 12345
	// begin starts a store in dir and a Put of big that breaks off after failAt bytes, calling
	// atBreak (when not nil) then, by an interruption (the context ends) or a plain failure;
	// the store is aborted after.
	begin := func(t *testing.T, dir string, opts Options, atBreak func(s *Store), interrupt bool) {
		t.Helper()
		s, err := Create(filepath.Join(dir, "out.tar"), opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := &cancelAfter{data: big, n: failAt, atBreak: func() {
			if atBreak != nil {
				atBreak(s)
			}
		}}
		if interrupt {
			r.cancel = cancel
		}
		if _, _, err := s.Put(ctx, r, d, size, false, member); err == nil {
			t.Fatal("Put of a broken stream succeeded")
		}
		s.Abort()
	}
	next := func(t *testing.T, dir string, opts Options) *Store {
		t.Helper()
		s, err := Create(filepath.Join(dir, "out.tar"), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Abort)
		return s
	}
	beside := func(dir string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, ".*"))
		return m
	}
	partialFile := func(resumeDir string) string {
		return filepath.Join(resumeDir, "blobs", "sha256-"+d.Encoded())
	}
	wantKept := func(t *testing.T, s *Store, n int64) {
		t.Helper()
		keeps, prefix, got := s.KeepsPartial(d, size)
		if !keeps || got != n || (n > 0) != (prefix != nil) {
			t.Fatalf("KeepsPartial = %v, %v, %d; want true, the first %d bytes", keeps, prefix != nil, got, n)
		}
		if prefix != nil {
			b, err := io.ReadAll(prefix)
			if err != nil || !bytes.Equal(b, big[:n]) {
				t.Errorf("the kept bytes read back wrong (%d bytes, %v)", len(b), err)
			}
			prefix.Close()
		}
	}

	t.Run("killed", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		opts := Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}}
		// At the break, the staging directory is copied as a killed writer would leave it
		// (its lock file not held), before the Put and the store clean up (keeping what
		// arrived in a resume directory of their own: a killed writer does not get to).
		begin(t, dir, Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}}, func(s *Store) {
			copyDir(t, s.staging.Path, filepath.Join(dir, staging.LayoutPrefix+"killed"))
		}, false)
		s := next(t, dir, opts)
		wantKept(t, s, 2*fillRecordEvery)
		put(t, s, big, d, size)
		if err := s.Commit(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if left := beside(dir); len(left) != 0 {
			t.Errorf("left beside the archive after the commit: %v", left)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		dir, resumeDir := t.TempDir(), t.TempDir()
		opts := Options{Resume: &types.ResumeOptions{Dir: resumeDir}}
		begin(t, dir, opts, nil, true)
		if left := beside(dir); len(left) != 0 {
			t.Errorf("left beside the archive after the interruption: %v", left)
		}
		s := next(t, dir, opts)
		wantKept(t, s, failAt)
		put(t, s, big, d, size)
		if _, err := os.Stat(partialFile(resumeDir)); !os.IsNotExist(err) {
			t.Errorf("the partial download is still there once the blob is stored: %v", err)
		}
	})
	t.Run("interrupted, then altered", func(t *testing.T) {
		t.Parallel()
		dir, resumeDir := t.TempDir(), t.TempDir()
		opts := Options{Resume: &types.ResumeOptions{Dir: resumeDir}}
		begin(t, dir, opts, nil, true)
		f, err := os.OpenFile(partialFile(resumeDir), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("altered"), 1000)
		f.Close()
		s := next(t, dir, opts)
		_, prefix, n := s.KeepsPartial(d, size)
		if n != failAt {
			t.Fatalf("%d bytes kept, want %d", n, failAt)
		}
		stream := io.MultiReader(prefix, bytes.NewReader(big[n:]))
		if _, _, err := s.Put(context.Background(), stream, d, size, false, member); !errors.Is(err, types.ErrDigestMismatch) {
			t.Fatalf("Put with altered kept bytes: %v, want a digest mismatch", err)
		}
		wantKept(t, s, 0)
	})
	t.Run("broken", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		opts := Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}}
		begin(t, dir, opts, nil, false) // the source's stream fails: the network was lost
		if left := beside(dir); len(left) != 0 {
			t.Errorf("left beside the archive after a failure: %v", left)
		}
		wantKept(t, next(t, dir, opts), failAt)
	})
	t.Run("not verified", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		opts := Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}}
		s := next(t, dir, opts)
		wrong := bytes.ToUpper(big)
		if _, _, err := s.Put(context.Background(), bytes.NewReader(wrong), d, size, false, member); !errors.Is(err, types.ErrDigestMismatch) {
			t.Fatalf("Put of the wrong bytes: %v, want a digest mismatch", err)
		}
		s.Abort()
		wantKept(t, next(t, dir, opts), 0)
	})
	t.Run("no resume", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		begin(t, dir, Options{}, nil, true)
		if keeps, _, _ := next(t, dir, Options{}).KeepsPartial(d, size); keeps {
			t.Error("a store without Resume keeps blobs")
		}
		s := next(t, t.TempDir(), Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}})
		if keeps, _, _ := s.KeepsPartial(d, resume.MinSize-1); keeps {
			t.Error("a blob under resume.MinSize is kept")
		}
	})
}

// copyDir copies the regular files of a directory into a new one.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Mkdir(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeepsBegunBlobOfKilledWriter: what a fill record counts of a blob a killed writer was
// writing is offered (KeepsPartial) and not taken for a complete member when later members
// follow its region (its header then names its whole size inside the tar, as with parallel
// downloads); a record that points past the end of the tar, even by an offset that
// overflows, offers nothing.
func TestKeepsBegunBlobOfKilledWriter(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), (resume.MinSize+fillRecordEvery)/16)
	d, size := digest.FromBytes(big), int64(len(big))
	const kept = 2 * fillRecordEvery
	// The dead writer's tar: big's region with its first kept bytes in, then (when followed)
	// another member.
	tarOf := func(followed bool) ([]byte, int64) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: member(d), Size: size, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Flush()
		contentOff := int64(buf.Len())
		buf.Write(big[:kept])
		if !followed {
			return buf.Bytes(), contentOff
		}
		buf.Write(make([]byte, (size+511)/512*512-kept)) // the rest of the region and its padding
		other := []byte("a member written after the region")
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: member(digest.FromBytes(other)), Size: int64(len(other)), Format: tar.FormatPAX})
		tw.Write(other)
		tw.Flush()
		return buf.Bytes(), contentOff
	}
	const tarName = ".tmp-out.tar-1"

	for _, tc := range []struct {
		name     string
		followed bool
		off      func(contentOff, tarSize int64) int64
		want     int64
	}{
		{"followed by another member", true, func(c, _ int64) int64 { return c }, kept},
		{"last", false, func(c, _ int64) int64 { return c }, kept},
		{"past the end", false, func(_, end int64) int64 { return end - kept + 1 }, 0},
		{"past the end, overflowing", false, func(_, _ int64) int64 { return math.MaxInt64 - kept/2 }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dead := filepath.Join(dir, staging.LayoutPrefix+"killed")
			if err := os.Mkdir(dead, 0o700); err != nil {
				t.Fatal(err)
			}
			tarBytes, contentOff := tarOf(tc.followed)
			record := fmt.Sprintf("%d %d %d %s\n", tc.off(contentOff, int64(len(tarBytes))), size, kept, tarName)
			for name, b := range map[string][]byte{".lock": nil, tarName: tarBytes, fillPrefix + d.Encoded(): []byte(record)} {
				if err := os.WriteFile(filepath.Join(dead, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Create(filepath.Join(dir, "out.tar"), Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Abort()
			keeps, prefix, n := s.KeepsPartial(d, size)
			if !keeps || n != tc.want || (n > 0) != (prefix != nil) {
				t.Fatalf("KeepsPartial = %v, %v, %d; want true, the first %d bytes", keeps, prefix != nil, n, tc.want)
			}
			if prefix != nil {
				b, err := io.ReadAll(prefix)
				if err != nil || !bytes.Equal(b, big[:n]) {
					t.Errorf("the kept bytes read back wrong (%d bytes, %v)", len(b), err)
				}
				prefix.Close()
			}
		})
	}
}

// TestAbandonedOfAnotherArchive: a writer takes over, and removes, what a killed writer of
// the same archive left beside it (and a staging directory of no archive), never what a
// killed copy into another archive in the same directory left: that is for the next copy
// into that archive to resume from, with resuming on or off.
func TestAbandonedOfAnotherArchive(t *testing.T) {
	t.Parallel()
	blob := bytes.Repeat([]byte("x"), 1000)
	d, tarBytes := oneMemberTar(blob)
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) Options
	}{
		{"resume", func(t *testing.T) Options { return Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}} }},
		{"no resume", func(*testing.T) Options { return Options{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dead := map[string]string{ // staging directory → the file its dead writer left
				"other": staging.ReplacementPrefix(filepath.Join(dir, "other.tar")) + "1",
				"mine":  staging.ReplacementPrefix(filepath.Join(dir, "out.tar")) + "2",
				"none":  "",
			}
			for name, file := range dead {
				p := filepath.Join(dir, staging.LayoutPrefix+name)
				must(t, os.Mkdir(p, 0o700))
				must(t, os.WriteFile(filepath.Join(p, staging.LockName), nil, 0o600))
				if file != "" {
					must(t, os.WriteFile(filepath.Join(p, file), tarBytes, 0o600))
				}
			}
			s, err := Create(filepath.Join(dir, "out.tar"), tc.opts(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := s.Salvage(context.Background(), d, int64(len(blob)), member(d)); ok != (tc.name == "resume") {
				t.Errorf("Salvage: %v", ok)
			}
			if err := s.Commit(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]bool{"other": true, "mine": false, "none": false} {
				_, err := os.Stat(filepath.Join(dir, staging.LayoutPrefix+name, dead[name]))
				if got := err == nil; got != want {
					t.Errorf("%s's staging directory is there: %v, want %v (%v)", name, got, want, err)
				}
			}
		})
	}
}

// oneMemberTar returns blob's digest and a tar holding blob as its member, unfinished (no
// end-of-archive blocks), as a killed writer leaves it.
func oneMemberTar(blob []byte) (digest.Digest, []byte) {
	d := digest.FromBytes(blob)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: member(d), Size: int64(len(blob)), Format: tar.FormatPAX})
	tw.Write(blob)
	tw.Flush()
	return d, buf.Bytes()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sparseTar is a file of zeros but for the bytes of a tar at offset at; it counts its reads.
type sparseTar struct {
	size, at int64
	tar      []byte
	reads    int
}

func (s *sparseTar) ReadAt(p []byte, off int64) (int, error) {
	s.reads++
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	clear(p[:n])
	if lo, hi := max(off, s.at), min(off+int64(n), s.at+int64(len(s.tar))); lo < hi {
		copy(p[lo-off:hi-off], s.tar[lo-s.at:hi-s.at])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestScanMembersReadsInChunks: the scan of an unfinished tar finds a member after a long
// gap (as a blob that never finished leaves, or the partial compressed archive of a writer
// killed while compressing) reading the gap in large pieces, not one 512-byte block a time.
func TestScanMembersReadsInChunks(t *testing.T) {
	t.Parallel()
	d, tarBytes := oneMemberTar([]byte("a blob after the gap"))
	const gap = 64 << 20
	r := &sparseTar{size: gap + int64(len(tarBytes)), at: gap, tar: tarBytes}
	var got []string
	scanMembers(r, r.size, func(h *tar.Header, dataOff int64) bool {
		got = append(got, fmt.Sprintf("%s@%d", h.Name, dataOff))
		return true
	})
	if want := fmt.Sprintf("%s@%d", member(d), gap+512); len(got) != 1 || got[0] != want {
		t.Errorf("found %q, want %q", got, want)
	}
	if limit := gap/scanChunk + 20; r.reads > limit {
		t.Errorf("%d reads for a %d MiB gap, want at most %d", r.reads, gap>>20, limit)
	}
}

// stagingDirs returns the staging directories beside path.
func stagingDirs(t *testing.T, path string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), staging.LayoutPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestAbortLeavesCompleteBlobsForNext: with Resume, an abandoned write (Ctrl-C, a failure)
// whose tar holds complete blobs worth keeping leaves it beside the archive, as a killed
// writer's, and the next store takes them over; an abandoned tar the next write took over
// stays while it holds such a blob that write did not take. Without Resume, or with only
// small blobs, nothing is left.
func TestAbortLeavesCompleteBlobsForNext(t *testing.T) {
	t.Parallel()
	big1 := bytes.Repeat([]byte("1"), resume.MinSize+10)
	big2 := bytes.Repeat([]byte("2"), resume.MinSize+20)
	small := []byte("small blob")
	d1, d2 := digest.FromBytes(big1), digest.FromBytes(big2)
	ctx := context.Background()

	t.Run("left, taken over", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "out.tar")
		opts := Options{Resume: &types.ResumeOptions{Dir: t.TempDir()}}
		// The second write takes nothing over (it is interrupted first) and writes another blob.
		for i, blobs := range [][][]byte{{big1, small}, {big2}} {
			s, err := Create(path, opts)
			must(t, err)
			for _, b := range blobs {
				put(t, s, b, digest.FromBytes(b), int64(len(b)))
			}
			s.Abort()
			if dirs := stagingDirs(t, path); len(dirs) != i+1 {
				t.Fatalf("after abort %d: staging directories %v, want one per write", i+1, dirs)
			}
		}
		third, err := Create(path, opts)
		must(t, err)
		for _, d := range []digest.Digest{d1, d2} {
			if _, ok := third.Salvage(ctx, d, -1, member(d)); !ok {
				t.Errorf("blob %s not taken over from an abandoned write", d)
			}
		}
		must(t, third.Commit(ctx, nil))
		if dirs := stagingDirs(t, path); len(dirs) != 0 {
			t.Errorf("after the commit: staging directories %v left", dirs)
		}
	})
	for _, tc := range []struct {
		name   string
		resume bool
		blob   []byte
	}{
		{"without Resume", false, big1},
		{"only small blobs", true, small},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "out.tar")
			var opts Options
			if tc.resume {
				opts.Resume = &types.ResumeOptions{Dir: t.TempDir()}
			}
			s, err := Create(path, opts)
			must(t, err)
			put(t, s, tc.blob, digest.FromBytes(tc.blob), int64(len(tc.blob)))
			s.Abort()
			if dirs := stagingDirs(t, path); len(dirs) != 0 {
				t.Errorf("staging directories %v left", dirs)
			}
		})
	}
}
