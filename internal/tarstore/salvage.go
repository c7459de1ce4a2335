package tarstore

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/staging"
	"github.com/imgcopy/imgcopy/internal/verify"
)

// Salvaging (issue 17): a writer killed before its Commit leaves its unfinished tar in a
// staging directory. Blobs it had written completely are still in there, each a member named
// after its digest, in the region reserved for it; gaps (regions reserved for blobs that never
// finished) are zeros. A Store created with Options.Resume scans those tars for member headers
// and offers the blobs to its destination (Salvage), which copies them into the new tar while
// hashing them: a member cut short or damaged fails the check and is simply not taken.

// salvaged is a blob found in an abandoned tar.
type salvaged struct {
	file      *os.File
	off, size int64
}

// hexName finds a sha256 digest in a member name (blobs/sha256/HEX, HEX.tar, HEX.json).
var hexName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?:^|/)([a-f0-9]{64})(?:\.tar|\.json)?$`) })

// takeAbandoned locks the staging directories dead writers left beside the archive and
// indexes the blobs in their tars. The directories are removed when the store ends.
func (s *Store) takeAbandoned(dir string) {
	s.salvage = map[digest.Digest]salvaged{}
	for _, old := range staging.Abandoned(dir) {
		s.abandoned = append(s.abandoned, old)
		entries, _ := os.ReadDir(old.Path)
		for _, e := range entries {
			if !e.Type().IsRegular() || e.Name() == staging.LockName {
				continue
			}
			f, err := os.Open(filepath.Join(old.Path, e.Name()))
			if err != nil {
				continue
			}
			s.salvageFiles = append(s.salvageFiles, f)
			s.indexAbandoned(f)
		}
	}
}

// indexAbandoned records the blob members of an unfinished tar: every 512-byte block that
// starts a valid header (ustar magic, checksum) is tried.
func (s *Store) indexAbandoned(f *os.File) {
	fi, err := f.Stat()
	if err != nil {
		return
	}
	block := make([]byte, 512)
	for off := int64(0); off+512 <= fi.Size(); off += 512 {
		if _, err := f.ReadAt(block, off); err != nil {
			return
		}
		if !bytes.Equal(block[257:262], []byte("ustar")) {
			continue
		}
		sr := io.NewSectionReader(f, off, fi.Size()-off)
		h, err := tar.NewReader(sr).Next()
		if err != nil || h.Typeflag != tar.TypeReg {
			continue
		}
		m := hexName().FindStringSubmatch(h.Name)
		consumed, _ := sr.Seek(0, io.SeekCurrent)
		dataOff := off + consumed // the content follows the header blocks the reader consumed
		if m == nil || dataOff+h.Size > fi.Size() {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, m[1])
		s.salvage[d] = salvaged{file: f, off: dataOff, size: h.Size}
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

// dropAbandoned releases and removes what takeAbandoned took.
func (s *Store) dropAbandoned() {
	for _, f := range s.salvageFiles {
		f.Close()
	}
	for _, old := range s.abandoned {
		if err := old.Remove(); err != nil {
			logrus.WithError(err).Warn("cannot remove what an interrupted copy left")
		}
	}
	s.salvageFiles, s.abandoned, s.salvage = nil, nil, nil
}
