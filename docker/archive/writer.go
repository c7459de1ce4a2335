package archive

import (
	dref "github.com/distribution/reference"

	"github.com/imgcopy/imgcopy/docker/tarfile"
	"github.com/imgcopy/imgcopy/types"
)

// Writer builds one archive holding several images. Copy each image into a reference from
// w.NewReference (one copy at a time or concurrently); blobs the images share are stored
// once. Close writes the archive to its path; until then nothing appears there.
type Writer struct {
	w *tarfile.Writer
}

// NewWriter starts a multi-image archive that Close will store at path. sys selects the
// layout (DockerArchiveClassic) and the temporary directory; it may be nil.
func NewWriter(path string, sys *types.SystemContext) (*Writer, error) {
	w, err := tarfile.NewWriter(path, writerOptions(sys))
	if err != nil {
		return nil, err
	}
	return &Writer{w: w}, nil
}

// NewReference returns a reference whose destination adds an image, tagged named (nil for
// no tag), to the archive. Committing the copy lists the image; it does not finish the file.
func (w *Writer) NewReference(named dref.NamedTagged) (types.ImageReference, error) {
	r, err := NewReference(w.w.Path(), named)
	if err != nil {
		return nil, err
	}
	r.(*reference).writer = w
	return r, nil
}

// Close finishes the archive and renames it into place. It fails, leaving nothing at the
// path, when no image was committed.
func (w *Writer) Close() error {
	return w.w.Close()
}

// Abort discards the archive; nothing appears at the path. It is a no-op after Close.
func (w *Writer) Abort() {
	w.w.Abort()
}
