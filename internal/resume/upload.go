package resume

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
)

// UploadRecord describes an upload session of one blob to one repository.
type UploadRecord struct {
	Registry   string        `json:"registry"`
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	Size       int64         `json:"size"`
	// Location is the session's latest upload URL. It may carry the registry's session
	// state in its query; the file is private to the user (0600) and never logged.
	Location string `json:"location"`
	// Offset is how many bytes the registry confirmed. The registry's own answer to a status
	// request is what counts when the session is continued.
	Offset int64 `json:"offset"`
}

// Upload is the locked record of uploads of one blob to one repository.
type Upload struct {
	f    *os.File
	path string
	rec  *UploadRecord
}

// OpenUpload locks the record of uploads of d to repo on registry, creating it empty when
// there is none. It returns nil (and no error) when another process holds it: that process is
// uploading the same blob, and this one then uploads without a record.
func (s *Store) OpenUpload(registry, repo string, d digest.Digest) (*Upload, error) {
	dir, err := s.subdir(uploadsDir)
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256([]byte(registry + "/" + repo + "@" + d.String()))
	path := filepath.Join(dir, hex.EncodeToString(key[:])+".json")
	f, err := openLocked(path)
	if err != nil || f == nil {
		return nil, err
	}
	u := &Upload{f: f, path: path}
	var rec UploadRecord
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &rec) == nil &&
		rec.Registry == registry && rec.Repository == repo && rec.Digest == d && rec.Location != "" {
		u.rec = &rec
	}
	return u, nil
}

// Record returns the session an earlier run recorded, if any.
func (u *Upload) Record() (UploadRecord, bool) {
	if u.rec == nil {
		return UploadRecord{}, false
	}
	return *u.rec, true
}

// Save replaces the record. It is written in place (the lock is on this file), without an
// fsync: a record lost in a crash only costs the resume.
func (u *Upload) Save(rec UploadRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := u.f.Truncate(0); err != nil {
		return errors.Wrapf(err, "writing %s", u.path)
	}
	if _, err := u.f.WriteAt(b, 0); err != nil {
		return errors.Wrapf(err, "writing %s", u.path)
	}
	u.rec = &rec
	return nil
}

// Forget drops the record: the session is finished or gone.
func (u *Upload) Forget() {
	u.rec = nil
	_ = u.f.Truncate(0)
}

// Close releases the record; one without a session is removed.
func (u *Upload) Close() error {
	var err error
	if u.rec == nil {
		err = os.Remove(u.path) // still under our lock
	}
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	return errors.Wrapf(err, "closing %s", u.path)
}
