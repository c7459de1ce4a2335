package tarstore

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/copybuf"
	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/internal/tarappend"
	"github.com/imgcopy/imgcopy/internal/verify"
)

// Salvaging (issue 17): a writer killed before its Commit leaves its unfinished tar in a
// staging directory. Blobs it had written completely are still in there, each a member named
// after its digest, in the region reserved for it; gaps (regions reserved for blobs that never
// finished) are zeros. A Store created with Options.Resume scans those tars for member headers
// and offers the blobs to its destination (Salvage), which copies them into the new tar while
// hashing them: a member cut short or damaged fails the check and is simply not taken.
//
// A blob it had begun is offered too (KeepsPartial), so that a pull into an archive keeps no
// partial download of its own in the resume directory, which wrote every pulled blob twice
// (issue 18): while a blob of resume.MinSize or more streams into its region, a fill record
// beside the tar (fillPrefix + the digest's hex) says where its content starts and how much of
// it is written, updated every fillRecordEvery bytes. The next writer offers those bytes as
// the start of the blob; the copy streams them, then fetches the rest, and verifies the whole,
// so a record ahead of the data it describes (a power cut) costs a second fetch, no more.
//
// A copy that is interrupted (its context ends: Ctrl-C) or fails (a blob's stream broke off
// for good: the network was lost) copies what arrived of the blobs being written (unless it
// did not verify) into their partial downloads in the resume directory (the only time those
// bytes are written twice), which KeepsPartial offers too. Its unfinished tar stays beside the
// archive, as a killed writer's, when it holds complete blobs worth keeping (leaveForNext);
// otherwise it is removed, so that nothing is left beside the archive.
const (
	fillPrefix      = ".fill-"
	fillRecordEvery = 1 << 20
	scanChunk       = 1 << 20 // see scanMembers
)

// fillRecord is the fill record of a blob being written into its region.
type fillRecord struct {
	f        *os.File
	prefix   string // the record's text before the count: the content offset and size
	suffix   string // after it: the tar's file name
	recorded int64  // the count written last
	written  int64  // the bytes of content in the tar
	failed   bool
}

// startFill creates the fill record of blob d, which reg holds, when it is worth keeping, and
// has reg's Fill update it; nil otherwise.
func (s *Store) startFill(reg *tarappend.Region, d digest.Digest) *fillRecord {
	if !s.resume || reg.Size() < resume.MinSize {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(s.staging.Path, fillPrefix+d.Encoded()), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		logrus.WithFields(logrus.Fields{"digest": d, "error": err}).Debug("no fill record; a killed copy loses what arrived of the blob")
		return nil
	}
	r := &fillRecord{f: f, prefix: fmt.Sprintf("%d %d ", reg.ContentOffset(), reg.Size()), suffix: " " + filepath.Base(s.file.Name()) + "\n"}
	reg.OnWritten = func(n int64) {
		r.written = n
		if n-r.recorded >= fillRecordEvery || n == reg.Size() {
			r.record(n)
		}
	}
	return r
}

// record writes the count n; the record only grows, so it overwrites the last one whole.
func (r *fillRecord) record(n int64) {
	if r.failed {
		return
	}
	if _, err := r.f.WriteAt([]byte(r.prefix+strconv.FormatInt(n, 10)+r.suffix), 0); err != nil {
		r.failed = true
		_ = r.f.Truncate(0)
		return
	}
	r.recorded = n
}

// remove drops the record.
func (r *fillRecord) remove() {
	if r != nil {
		r.f.Close()
		os.Remove(r.f.Name())
	}
}

// KeepsPartial reports whether blob d of size bytes, stored with Put, is kept for a later run
// when the copy is interrupted or fails (with Options.Resume, from resume.MinSize up), and
// returns the first n bytes of it that an earlier run kept, if any (to be verified with the
// rest of the blob): in an unfinished tar a killed writer left beside the archive, or in the blob's partial
// download, which (when there is one) stays open, locked, for the Put.
func (s *Store) KeepsPartial(d digest.Digest, size int64) (keeps bool, prefix io.ReadCloser, n int64) {
	if !s.resume || d == "" || size < resume.MinSize {
		return false, nil, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.keptOpen[d]
	if p == nil && s.kept != nil && !s.done && s.kept.HasPartial(d) {
		var err error
		if p, err = s.kept.OpenPartial(d, size); err != nil {
			logrus.WithFields(logrus.Fields{"digest": d, "error": err}).Debug("cannot open the partial download of the blob")
		}
		if p != nil {
			s.keptOpen[d] = p
		}
	}
	if t, ok := s.partial[d]; ok && t.size == size && (p == nil || t.kept > p.Kept()) {
		return true, io.NopCloser(io.NewSectionReader(t.file, t.off, t.kept)), t.kept
	}
	if p != nil && p.Kept() > 0 && p.Kept() <= size {
		return true, io.NopCloser(p.Reader()), p.Kept()
	}
	return true, nil, 0
}

// takeKeptOpen returns the partial download KeepsPartial opened for d, if any, for its Put to
// close.
func (s *Store) takeKeptOpen(d digest.Digest) *resume.Partial {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.keptOpen[d]
	delete(s.keptOpen, d)
	return p
}

// closeKept closes a partial download: removed when the blob is complete, else kept.
func (s *Store) closeKept(p *resume.Partial, complete bool) {
	if p == nil {
		return
	}
	if err := p.Close(complete); err != nil {
		logrus.WithError(err).Debug("closing a partial download")
	}
}

// keepBegun copies what arrived of blob d (the first written bytes of reg's content) into
// its partial download p (opened now when nil), after the bytes p holds already, and closes
// it.
func (s *Store) keepBegun(reg *tarappend.Region, d digest.Digest, written int64, p *resume.Partial) {
	if p == nil && s.kept != nil && written > 0 {
		var err error
		if p, err = s.kept.OpenPartial(d, reg.Size()); err != nil {
			logrus.WithFields(logrus.Fields{"digest": d, "error": err}).Debug("cannot keep what arrived of the blob")
		}
	}
	if p == nil {
		return
	}
	if from := p.Kept(); written > from {
		_, err := copybuf.Copy(recorder{p}, io.NewSectionReader(s.file, reg.ContentOffset()+from, written-from))
		if err != nil {
			p.Discard()
		}
		logrus.WithFields(logrus.Fields{"digest": d, "kept": written, "error": err}).Debug("kept what arrived of the blob for a later run")
	}
	s.closeKept(p, false)
}

// recorder appends to a partial download.
type recorder struct{ p *resume.Partial }

func (r recorder) Write(b []byte) (int, error) {
	r.p.Record(b)
	return len(b), nil
}

// salvaged is a blob found in an abandoned tar: complete, or its first kept bytes.
type salvaged struct {
	file      *os.File
	off, size int64
	kept      int64 // of a blob begun (Store.partial)
}

// hexName finds a sha256 digest in a member name (blobs/sha256/HEX, HEX.tar, HEX.json).
var hexName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?:^|/)([a-f0-9]{64})(?:\.tar|\.json)?$`) })

// takeAbandoned locks the staging directories dead writers of this archive left beside it
// and indexes the blobs in their tars. The directories are removed when the store ends.
func (s *Store) takeAbandoned(dir string) {
	s.salvage, s.partial = map[digest.Digest]salvaged{}, map[digest.Digest]salvaged{}
	for _, old := range staging.AbandonedOf(dir, s.mine) {
		s.abandoned = append(s.abandoned, old)
		entries, _ := os.ReadDir(old.Path)
		var fills []begun
		for _, e := range entries {
			if e.Type().IsRegular() && strings.HasPrefix(e.Name(), fillPrefix) {
				if b, ok := readFill(filepath.Join(old.Path, e.Name())); ok {
					fills = append(fills, b)
				}
			}
		}
		tars := map[string]*os.File{}
		for _, e := range entries {
			if !e.Type().IsRegular() || e.Name() == staging.LockName || strings.HasPrefix(e.Name(), fillPrefix) {
				continue
			}
			f, err := os.Open(filepath.Join(old.Path, e.Name()))
			if err != nil {
				continue
			}
			s.salvageFiles = append(s.salvageFiles, f)
			tars[e.Name()] = f
			// A member whose fill record counts less than its size was being written: its
			// region holds a whole member's header and size whenever a later member follows it,
			// but only its first bytes are in.
			unfinished := map[int64]bool{}
			for _, b := range fills {
				if b.tar == e.Name() && b.n < b.size {
					unfinished[b.off] = true
				}
			}
			s.indexAbandoned(f, unfinished)
		}
		for _, b := range fills {
			s.indexBegun(b, tars)
		}
	}
}

// begun is what a fill record says of a blob being written.
type begun struct {
	d            digest.Digest
	off, size, n int64  // where its content starts in the tar, its size, how much of it is in
	tar          string // the tar's file name
}

// readFill reads and checks a fill record.
func readFill(path string) (begun, bool) {
	rf, err := os.Open(path)
	if err != nil {
		return begun{}, false
	}
	b, err := iolimits.ReadAtMost(rf, 1024)
	rf.Close()
	if err != nil {
		return begun{}, false
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(filepath.Base(path), fillPrefix))
	fields := strings.SplitN(strings.TrimSuffix(string(b), "\n"), " ", 4) // the tar's name may hold spaces
	if len(fields) != 4 || d.Validate() != nil {
		return begun{}, false
	}
	off, err1 := strconv.ParseInt(fields[0], 10, 64)
	size, err2 := strconv.ParseInt(fields[1], 10, 64)
	n, err3 := strconv.ParseInt(fields[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || off < 0 || n <= 0 || n > size {
		return begun{}, false
	}
	return begun{d: d, off: off, size: size, n: n, tar: fields[3]}, true
}

// indexBegun records the blob a fill record describes, unless it is complete elsewhere.
func (s *Store) indexBegun(b begun, tars map[string]*os.File) {
	f := tars[b.tar]
	if f == nil {
		return
	}
	if fi, err := f.Stat(); err != nil || b.off > fi.Size()-b.n {
		return
	}
	if _, done := s.salvage[b.d]; done {
		return
	}
	if p, ok := s.partial[b.d]; !ok || p.kept < b.n {
		s.partial[b.d] = salvaged{file: f, off: b.off, size: b.size, kept: b.n}
	}
}

// indexAbandoned records the blob members of an unfinished tar (scanMembers). Members whose
// content starts at an offset in unfinished are not complete (see takeAbandoned).
func (s *Store) indexAbandoned(f *os.File, unfinished map[int64]bool) {
	fi, err := f.Stat()
	if err != nil {
		return
	}
	scanMembers(f, fi.Size(), func(h *tar.Header, dataOff int64) bool {
		m := hexName().FindStringSubmatch(h.Name)
		if m == nil {
			return false
		}
		if !unfinished[dataOff] {
			d := digest.NewDigestFromEncoded(digest.SHA256, m[1])
			s.salvage[d] = salvaged{file: f, off: dataOff, size: h.Size}
		}
		return true
	})
}

// scanMembers calls found for the regular members of the tar r (size bytes) whose content
// lies within it: every 512-byte block that starts a valid header (ustar magic, checksum) is
// tried, and the content of a member that found accepts is skipped. It reads scanChunk bytes
// at a time: what lies between members (the gaps of blobs that never finished, a damaged
// tar, the partial compressed archive of a writer killed while compressing) is read in
// large pieces, not a system call per block (5 s a GiB).
func scanMembers(r io.ReaderAt, size int64, found func(h *tar.Header, dataOff int64) bool) {
	buf := make([]byte, scanChunk)
	var bufOff, bufLen int64 // what buf holds
	for off := int64(0); off+512 <= size; off += 512 {
		if off < bufOff || off+512 > bufOff+bufLen {
			n, _ := r.ReadAt(buf, off)
			if n < 512 {
				return
			}
			bufOff, bufLen = off, int64(n)
		}
		if string(buf[off-bufOff+257:off-bufOff+262]) != "ustar" {
			continue
		}
		sr := io.NewSectionReader(r, off, size-off)
		h, err := tar.NewReader(sr).Next()
		if err != nil || h.Typeflag != tar.TypeReg {
			continue
		}
		consumed, _ := sr.Seek(0, io.SeekCurrent)
		dataOff := off + consumed // the content follows the header blocks the reader consumed
		if dataOff+h.Size > size || !found(h, dataOff) {
			continue
		}
		off = dataOff + (h.Size+511)/512*512 - 512
	}
}

// Salvage stores blob d as member from what a killed writer left (see Options.Resume),
// hashing it as it is copied; it reports whether d is now stored. A blob found but damaged
// is dropped.
func (s *Store) Salvage(ctx context.Context, d digest.Digest, size int64, member string) (Blob, bool) {
	s.mu.Lock()
	sv, ok := s.salvage[d]
	delete(s.salvage, d)
	s.mu.Unlock()
	if !ok || (size >= 0 && sv.size != size) {
		return Blob{}, false
	}
	vr, err := verify.NewReader(ctxio.Reader(ctx, io.NewSectionReader(sv.file, sv.off, sv.size)), d, sv.size)
	if err == nil {
		err = s.AddBlob(d, sv.size, vr, member)
	}
	if err != nil {
		logrus.WithFields(logrus.Fields{"digest": d, "error": err}).Debug("not taking a blob an interrupted copy left")
		return Blob{}, false
	}
	logrus.WithFields(logrus.Fields{"digest": d, "size": sv.size}).Debug("took over a blob an interrupted copy had written")
	return s.Blob(d)
}

// dropAbandoned releases and removes what takeAbandoned took, and releases the partial
// downloads KeepsPartial opened for Puts that never came.
func (s *Store) dropAbandoned() {
	s.dropAbandonedKeeping(nil)
}

// dropAbandonedKeeping is dropAbandoned, but the abandoned staging directories holding one of
// the files keep names are released and left in place for the next writer.
func (s *Store) dropAbandonedKeeping(keep map[string]bool) {
	for d, p := range s.keptOpen {
		s.closeKept(p, false)
		delete(s.keptOpen, d)
	}
	for _, f := range s.salvageFiles {
		f.Close()
	}
	for _, old := range s.abandoned {
		if holdsAny(old.Path, keep) {
			old.Release()
			continue
		}
		if err := old.Remove(); err != nil {
			logrus.WithError(err).Warn("cannot remove what an interrupted copy left")
		}
	}
	s.salvageFiles, s.abandoned, s.salvage = nil, nil, nil
}

// holdsAny reports whether one of the files named in files is in directory dir.
func holdsAny(dir string, files map[string]bool) bool {
	for f := range files {
		if filepath.Dir(f) == dir {
			return true
		}
	}
	return false
}

// leaveForNext leaves the unfinished tar of an abandoned write (a copy interrupted with Ctrl-C,
// or failed) beside the archive, as a killed writer's, when resuming is on and it holds
// complete blobs worth keeping (resume.MinSize and up): the next writer of the archive takes
// them over (takeAbandoned) instead of fetching them again, or removes them (with resuming
// off). The abandoned tars this write took over stay too while they hold such a blob it did
// not take. A tar that could not be written (most likely a full disk) is removed. It reports
// whether it left the tar; the caller holds mu.
func (s *Store) leaveForNext() bool {
	if !s.resume || s.tf.Broken() != nil {
		return false
	}
	var blobs int
	var size int64
	s.blobsMu.RLock()
	for _, b := range s.blobs {
		if b.Size >= resume.MinSize {
			blobs, size = blobs+1, size+b.Size
		}
	}
	keep := map[string]bool{}
	for d, sv := range s.salvage {
		if _, taken := s.blobs[d]; !taken && sv.size >= resume.MinSize {
			keep[sv.file.Name()] = true
		}
	}
	s.blobsMu.RUnlock()
	if blobs == 0 {
		return false
	}
	s.staging.Release()
	s.dropAbandonedKeeping(keep)
	// A warning, not a debug line: it is disk space the user may want back.
	logrus.Warnf("kept %d complete blob(s) (%.1f MiB) of the unfinished archive in %s: the next copy into %s continues from them (with --no-resume it removes them)",
		blobs, float64(size)/(1<<20), s.staging.Path, s.path)
	return true
}
