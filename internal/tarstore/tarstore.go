// Package tarstore writes a tar of content-addressed blobs plus metadata members: the one
// implementation behind the docker-archive and oci-archive destinations.
//
// The tar is a temporary file in a staging directory beside the final path (internal/staging:
// locked while the writer lives, so that the next writer removes, or with Options.Resume
// salvages, what a killed one left, or an abandoned one with complete blobs: salvage.go) that
// Commit renames into place, so a failed or abandoned write never leaves a partial archive. Each blob
// is stored once. A Store is safe for concurrent use: a blob of known digest and size gets its
// region of the tar reserved (internal/tarappend) and streams straight into it while other
// blobs are written elsewhere in the file; a blob of unknown size or digest is verified into
// a spool file first and appended after. A blob that another call is writing right now is
// waited for rather than written twice (Wait lets a destination's TryReusingBlob do the same,
// so that images sharing a layer download it once). A blob that fails leaves nothing under
// its name. Parent directory members are written before the first member below them.
package tarstore

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/filelock"
	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/internal/tarappend"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/types"
)

// memberTime is the modification time of every member, for reproducible archives.
var memberTime = time.Unix(0, 0)

// Blob is a blob stored in the tar.
type Blob struct {
	Member string // the member's name
	Offset int64  // where its content starts in the (uncompressed) tar
	Size   int64
}

// Options are the optional arguments of Create.
type Options struct {
	// TempDir is where blobs of unknown size or digest are spooled; "" means the directory of
	// the archive.
	TempDir string
	// Compression ("", "gzip" or "zstd") compresses the finished tar at Commit.
	Compression string
	// Resume offers the blobs that writers killed before their Commit left beside the archive
	// (Salvage, KeepsPartial), and keeps what arrived of the blobs being written when a copy
	// is interrupted or fails in their partial downloads, and its unfinished tar when it holds
	// complete blobs (salvage.go); nil: what killed writers left is only removed.
	Resume *types.ResumeOptions
	// NoFsync skips the fsyncs of the finished archive and its directory (--fsync=false).
	NoFsync bool
	// Stream writes the archive at Commit into the path, which is not a regular file (a pipe,
	// a terminal, /dev/stdout: see ResolveDestination), instead of renaming it into place;
	// it is staged in TempDir (or os.TempDir), and Resume does not apply.
	Stream bool
}

// Store is a tar being written; see the package documentation.
type Store struct {
	path        string
	tempDir     string
	compression string
	noFsync     bool
	stream      bool         // Options.Stream
	staging     *staging.Dir // holds the tar being written (and its compressed form)
	file        *os.File

	// What killed writers left (salvage.go), taken at Create and released at the end.
	resume       bool
	abandoned    []*staging.Dir
	salvageFiles []*os.File
	salvage      map[digest.Digest]salvaged // guarded by mu
	partial      map[digest.Digest]salvaged // blobs they had begun (kept bytes); guarded by mu

	// The resume directory's partial downloads (salvage.go): nil without Options.Resume.
	kept     *resume.Store
	keptOpen map[digest.Digest]*resume.Partial // opened by KeepsPartial for a Put; guarded by mu

	// mu serializes writing the tar and guards everything below but blobs.
	mu       sync.Mutex
	tf       *tarappend.File
	dirs     map[string]bool
	inflight map[digest.Digest]chan struct{} // blobs being written into a reserved region; closed when released
	closing  bool                            // Commit has started: no new blobs from Put
	done     bool                            // committed or aborted

	// blobsMu guards blobs (written with mu held too), so that Blob never waits for a
	// member being appended.
	blobsMu sync.RWMutex
	blobs   map[digest.Digest]Blob
}

// Create starts a tar that Commit will store at path.
func Create(path string, opts Options) (*Store, error) {
	switch opts.Compression {
	case "", "gzip", "zstd":
	default:
		return nil, errors.Errorf("unknown archive compression %q (want gzip or zstd)", opts.Compression)
	}
	dir := filepath.Dir(path)
	if opts.Stream {
		// Nothing is written beside a pipe or a device (/dev), and nothing there is taken over.
		dir, opts.Resume = opts.TempDir, nil
		if dir == "" {
			dir = os.TempDir()
		}
	}
	s := &Store{path: path, tempDir: opts.TempDir, compression: opts.Compression, noFsync: opts.NoFsync, stream: opts.Stream,
		resume: opts.Resume != nil, kept: resume.New(opts.Resume), keptOpen: map[digest.Digest]*resume.Partial{},
		dirs: map[string]bool{}, inflight: map[digest.Digest]chan struct{}{}, blobs: map[digest.Digest]Blob{}}
	switch {
	case s.stream:
	case s.resume:
		s.removeDeadReplacements(dir)
		s.takeAbandoned(dir)
	default:
		s.removeDeadReplacements(dir)
		staging.RemoveAbandonedOf(dir, s.mine) // this archive, left unfinished by dead writers
	}
	sd, err := staging.NewDir(dir)
	if err != nil {
		s.dropAbandoned()
		return nil, errors.Wrapf(err, "creating archive %s", path)
	}
	f, err := staging.CreateTemp(sd.Path, staging.ReplacementPattern(path))
	if err != nil {
		sd.Remove()
		s.dropAbandoned()
		return nil, errors.Wrapf(err, "creating archive %s", path)
	}
	s.staging, s.file = sd, f
	if s.tempDir == "" {
		s.tempDir = sd.Path
	}
	s.tf = tarappend.New(f)
	s.tf.SyncBehind = !s.noFsync
	return s, nil
}

// removeDeadReplacements removes the replacement files of this archive that an older run left
// in dir, beside it (each is locked while in use); unfinished archives are in staging
// directories.
func (s *Store) removeDeadReplacements(dir string) {
	staging.RemoveDead(dir, func(name string) bool { return strings.HasPrefix(name, staging.ReplacementPrefix(s.path)) })
}

// Streamed reports whether the archive is streamed into its path at Commit (Options.Stream):
// there is no archive there to merge with.
func (s *Store) Streamed() bool { return s.stream }

// mine reports whether an abandoned staging directory beside the archive is this archive's
// (or no archive's): what a killed copy into another archive in the same directory left is
// that archive's to resume from.
func (s *Store) mine(dir string) bool {
	a := staging.ArchiveOf(dir)
	return a == "" || a == filepath.Base(s.path)
}

// Path returns the final path of the archive.
func (s *Store) Path() string { return s.path }

// Blob returns where blob d is stored, if it is.
func (s *Store) Blob(d digest.Digest) (Blob, bool) {
	s.blobsMu.RLock()
	defer s.blobsMu.RUnlock()
	b, ok := s.blobs[d]
	return b, ok
}

// usableLocked reports why nothing more can be written, if so.
func (s *Store) usableLocked() error {
	switch {
	case s.done:
		return errors.Errorf("archive %s is already closed", s.path)
	case s.tf.Broken() != nil:
		return errors.Wrapf(s.tf.Broken(), "archive %s is unusable after an earlier failure", s.path)
	}
	return nil
}

// Put stores the blob read from r (to EOF) as the member member(digest) and returns its
// digest and size. d may be "" and size -1 when unknown; when given, the content must match
// them or nothing is stored and a types.ErrDigestMismatch is returned. verified is
// types.PutBlobOptions.Verified. A blob stored already is not written again; one another call
// is writing is waited for (and written by this call if that one fails).
func (s *Store) Put(ctx context.Context, r io.Reader, d digest.Digest, size int64, verified bool, member func(digest.Digest) string) (digest.Digest, int64, error) {
	if d != "" {
		if err := d.Validate(); err != nil {
			return "", -1, errors.Wrapf(err, "invalid digest %q", d)
		}
		if b, ok := s.Blob(d); ok {
			return d, b.Size, drain(r, d)
		}
	}
	vr, err := verify.NewPutReader(ctxio.Reader(ctx, r), d, size, verified)
	if err != nil {
		return "", -1, err
	}
	if d == "" || size < 0 {
		return s.putSpooled(vr, member)
	}
	for {
		reg, stored, busy, err := s.reserve(d, size, member(d))
		switch {
		case err != nil:
			return "", -1, err
		case stored >= 0: // stored meanwhile
			return d, stored, drain(vr, d)
		case busy != nil: // being written by another call, which may still fail
			select {
			case <-busy:
				continue
			case <-ctx.Done():
				return "", -1, ctx.Err()
			}
		}
		fill := s.startFill(reg, d)
		err = reg.Fill(vr)
		if err := s.release(reg, d, err, fill); err != nil {
			return "", -1, err
		}
		logrus.WithFields(logrus.Fields{"digest": d, "size": size}).Debug("blob written into the archive")
		return d, size, nil
	}
}

// Wait returns blob d when it is stored, waiting first while another call writes it (which
// may fail, leaving it missing). It fails only when ctx ends.
func (s *Store) Wait(ctx context.Context, d digest.Digest) (Blob, bool, error) {
	for {
		s.mu.Lock()
		busy := s.inflight[d]
		s.mu.Unlock()
		if busy == nil {
			b, ok := s.Blob(d)
			return b, ok, nil
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return Blob{}, false, ctx.Err()
		}
	}
}

func drain(r io.Reader, d digest.Digest) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return errors.Wrapf(err, "reading blob %s", d)
	}
	return nil
}

// reserve claims a region at the end of the tar for blob d of size bytes stored as member.
// It returns the size of d instead when d is stored already, and, when another call is
// writing d right now, a channel closed when that call ends.
func (s *Store) reserve(d digest.Digest, size int64, member string) (*tarappend.Region, int64, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.putUsableLocked(); err != nil {
		return nil, -1, nil, err
	}
	if b, ok := s.Blob(d); ok {
		return nil, b.Size, nil, nil
	}
	if busy := s.inflight[d]; busy != nil {
		return nil, -1, busy, nil
	}
	if err := s.dirsLocked(path.Dir(member)); err != nil {
		return nil, -1, nil, err
	}
	reg, err := s.tf.Reserve(header(member, size))
	if err != nil {
		return nil, -1, nil, err
	}
	s.inflight[d] = make(chan struct{})
	return reg, -1, nil, nil
}

func (s *Store) putUsableLocked() error {
	if s.closing && !s.done {
		return errors.Errorf("archive %s is being committed", s.path)
	}
	return s.usableLocked()
}

// release ends the region of blob d: with fillErr nil the blob is recorded, otherwise the
// region is given up (see tarappend) and fillErr returned. What arrived of a blob whose copy
// was interrupted (the context ended) or broke off (the source's stream failed: the network
// was lost) is kept first (keepBegun); nothing of a blob that did not verify is.
func (s *Store) release(reg *tarappend.Region, d digest.Digest, fillErr error, fill *fillRecord) error {
	p := s.takeKeptOpen(d)
	switch {
	case fillErr == nil:
		s.closeKept(p, true)
	case errors.Is(fillErr, types.ErrDigestMismatch):
		if p != nil {
			p.Discard() // kept bytes the blob did not verify with
		}
		s.closeKept(p, false)
	case fill != nil:
		s.keepBegun(reg, d, fill.written, p)
	default:
		s.closeKept(p, false)
	}
	fill.remove()
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.inflight[d])
	delete(s.inflight, d)
	if s.done {
		if fillErr != nil {
			return fillErr
		}
		return s.usableLocked()
	}
	if err := s.tf.Done(reg, fillErr); err != nil {
		return err
	}
	s.recordLocked(d, Blob{Member: reg.Name(), Offset: reg.ContentOffset(), Size: reg.Size()})
	return nil
}

func (s *Store) recordLocked(d digest.Digest, b Blob) {
	s.blobsMu.Lock()
	s.blobs[d] = b
	s.blobsMu.Unlock()
}

// putSpooled verifies vr (of a blob whose digest or size was not given) into a temporary
// file, then appends it.
func (s *Store) putSpooled(vr *verify.Reader, member func(digest.Digest) string) (digest.Digest, int64, error) {
	tmp, err := os.CreateTemp(s.tempDir, staging.BlobPattern)
	if err != nil {
		return "", -1, errors.Wrap(err, "creating temporary blob file")
	}
	// Unlinked at once: it lives while open, and a killed process leaves nothing behind.
	os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, vr)
	d := vr.Digest()
	if err != nil {
		return "", -1, errors.Wrapf(err, "spooling blob %s", d)
	}
	logrus.WithFields(logrus.Fields{"digest": d, "size": n}).Debug("spooled blob")
	if err := s.AddBlob(d, n, io.NewSectionReader(tmp, 0, n), member(d)); err != nil {
		return "", -1, err
	}
	b, _ := s.Blob(d)
	return d, b.Size, nil
}

// AddBlob appends blob d of size bytes read from r as member, unless it is stored already (r
// is then not read). The caller vouches for the content: a manifest it hashed, or a reader
// that verifies as it goes (whose error fails the member, which is then cut off).
func (s *Store) AddBlob(d digest.Digest, size int64, r io.Reader, member string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for busy := s.inflight[d]; busy != nil && !s.done; busy = s.inflight[d] {
		s.mu.Unlock()
		<-busy
		s.mu.Lock()
	}
	if err := s.usableLocked(); err != nil {
		return err
	}
	if _, ok := s.Blob(d); ok {
		return nil
	}
	off, err := s.appendLocked(member, size, r)
	if err != nil {
		return errors.Wrapf(err, "storing blob %s", d)
	}
	s.recordLocked(d, Blob{Member: member, Offset: off, Size: size})
	return nil
}

// AddFile appends a member that is not a blob (metadata such as index.json).
func (s *Store) AddFile(name string, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if _, err := s.appendLocked(name, int64(len(b)), bytes.NewReader(b)); err != nil {
		return errors.Wrapf(err, "writing %s", name)
	}
	return nil
}

// AddSymlink appends a symbolic link member.
func (s *Store) AddSymlink(name, target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if err := s.dirsLocked(path.Dir(name)); err != nil {
		return err
	}
	return s.tf.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: memberTime, Format: tar.FormatPAX})
}

// appendLocked writes a regular member (after its parent directories) and returns the offset
// of its content. On failure the tar is cut back, so the archive stays consistent.
func (s *Store) appendLocked(name string, size int64, r io.Reader) (int64, error) {
	if err := s.dirsLocked(path.Dir(name)); err != nil {
		return -1, err
	}
	return s.tf.Append(header(name, size), r)
}

func header(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: memberTime, Format: tar.FormatPAX}
}

// dirsLocked writes the directory members of dir and its parents that are not written yet.
func (s *Store) dirsLocked(dir string) error {
	if dir == "." || dir == "/" || s.dirs[dir] {
		return nil
	}
	if err := s.dirsLocked(path.Dir(dir)); err != nil {
		return err
	}
	if err := s.tf.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: memberTime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	s.dirs[dir] = true
	return nil
}

// ReadBlob reads back a small stored blob (a config, a manifest), at most limit bytes.
func (s *Store) ReadBlob(d digest.Digest, limit int) ([]byte, error) {
	b, ok := s.Blob(d)
	if !ok {
		return nil, errors.Errorf("blob %s was not stored in the archive", d)
	}
	if b.Size > int64(limit) {
		return nil, errors.Wrapf(iolimits.ErrTooLarge, "blob %s is %d bytes", d, b.Size)
	}
	buf := make([]byte, b.Size)
	if _, err := io.ReadFull(s.Open(b), buf); err != nil {
		return nil, errors.Wrapf(err, "reading back blob %s", d)
	}
	return buf, nil
}

// Open returns the content of a stored blob.
func (s *Store) Open(b Blob) *io.SectionReader {
	return io.NewSectionReader(readerAt{s}, b.Offset, b.Size)
}

// readerAt reads what was written so far; buffered members are flushed first.
type readerAt struct{ s *Store }

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if err := r.s.usableLocked(); err != nil {
		return 0, err
	}
	return r.s.tf.ReadAt(p, off)
}

// Commit finishes the archive: under an exclusive lock on the archive's directory (so that
// writers of the same archive merge one at a time) it calls finish, which reads what it needs
// (e.g. the archive now at the path, to keep its other images) and adds the last members;
// then it ends the tar, compresses it when asked, fsyncs and renames it over the path. Every
// blob must have been written: Commit fails while a Put is still streaming. On failure the
// archive is abandoned, as by Abort.
func (s *Store) Commit(ctx context.Context, finish func() error) error {
	if err := s.startCommit(); err != nil {
		return err
	}
	if !s.stream {
		unlock, err := filelock.LockDir(ctx, filepath.Dir(s.path))
		if err != nil {
			s.Abort()
			return err
		}
		defer unlock()
	}
	if finish != nil {
		if err := finish(); err != nil {
			s.Abort()
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.finishLocked(); err != nil {
		s.abortLocked()
		return errors.Wrapf(err, "writing archive %s", s.path)
	}
	return nil
}

func (s *Store) startCommit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	if n := len(s.inflight); n > 0 {
		return errors.Errorf("committing archive %s while %d blob(s) are still being written", s.path, n)
	}
	s.closing = true
	return nil
}

func (s *Store) finishLocked() error {
	if err := s.tf.Close(); err != nil {
		return err
	}
	if s.stream {
		return s.streamLocked()
	}
	final := s.file
	if s.compression != "" {
		f, err := s.compress()
		if err != nil {
			return err
		}
		s.file.Close()
		os.Remove(s.file.Name())
		s.file, final = f, f
	}
	if !s.noFsync {
		if err := final.Sync(); err != nil {
			return err
		}
	}
	if err := final.Chmod(atomicfile.Mode(0o644)); err != nil {
		return err
	}
	// Renamed while still open (locked), see staging.CreateTemp.
	if err := os.Rename(final.Name(), s.path); err != nil {
		return err
	}
	s.done = true
	if err := final.Close(); err != nil {
		return err
	}
	if err := s.staging.Remove(); err != nil {
		logrus.WithError(err).Warn("removing the staging directory of an archive")
	}
	s.dropAbandoned()
	if s.noFsync {
		return nil
	}
	return atomicfile.SyncDir(filepath.Dir(s.path)) // the archive's new name
}

// Abort abandons the archive: the temporary file is removed and nothing appears at the path.
// It is a no-op after a successful Commit.
func (s *Store) Abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abortLocked()
}

func (s *Store) abortLocked() {
	if s.done {
		return
	}
	s.done = true
	s.file.Close()
	if s.leaveForNext() {
		return
	}
	s.staging.Remove()
	s.dropAbandoned()
}
