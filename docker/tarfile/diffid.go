package tarfile

import (
	"io"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/archivefile"
	"github.com/imgcopy/imgcopy/types"
)

// diffIDReader serves a compressed layer of a docker archive without an OCI manifest for it
// (a crane tarball, a gzip layer in a docker save archive), whose digest was computed from
// its own bytes and so cannot disagree with them: while the layer streams, a goroutine
// decompresses a copy and, at the end, the content must match the layer's diff ID in the
// image config, as docker load requires. A mismatch, or content that does not decompress,
// is returned by the Read that reaches the end, as ErrDigestMismatch.
type diffIDReader struct {
	r       io.Reader
	pw      *io.PipeWriter
	result  chan error
	name    string // the member, for messages
	archive string
	err     error // sticky, once the end was reached or a write failed
}

func newDiffIDReader(r io.Reader, compression string, diffID digest.Digest, name, archive string) *diffIDReader {
	pr, pw := io.Pipe()
	d := &diffIDReader{r: r, pw: pw, result: make(chan error, 1), name: name, archive: archive}
	go func() {
		d.result <- checkDiffID(pr, compression, diffID)
		pr.Close()
	}()
	return d
}

// checkDiffID decompresses r and compares its content with diffID; it reads r to its end
// whatever happens, so that the writer never blocks.
func checkDiffID(r io.Reader, compression string, diffID digest.Digest) error {
	defer io.Copy(io.Discard, r) //nolint:errcheck // draining only
	zr, err := archivefile.Decompress(r, compression)
	if err != nil {
		return errors.Wrapf(types.ErrDigestMismatch, "its %s content is corrupt (%v), so it matches no diff ID", compression, err)
	}
	defer zr.Close()
	h := diffID.Algorithm().Digester()
	if _, err := io.Copy(h.Hash(), zr); err != nil {
		return errors.Wrapf(types.ErrDigestMismatch, "its %s content is corrupt (%v), so it matches no diff ID", compression, err)
	}
	if got := h.Digest(); got != diffID {
		return types.DigestMismatchError{Expected: diffID.String(), Actual: got.String(), ExpectedSize: -1, ActualSize: -1}
	}
	return nil
}

func (d *diffIDReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	if n > 0 {
		if _, werr := d.pw.Write(p[:n]); werr != nil {
			// The checker stopped early: it drains, so this is an unexpected pipe state.
			d.err = errors.Wrapf(werr, "checking layer %q in docker archive %s against its diff ID", d.name, d.archive)
			return n, nil
		}
	}
	if err == io.EOF {
		d.pw.Close()
		if cerr := <-d.result; cerr != nil {
			d.err = errors.Wrapf(cerr, "layer %q in docker archive %s does not decompress to its diff ID", d.name, d.archive)
			return n, d.err
		}
		d.err = io.EOF
	}
	return n, err
}

// Close stops the checker when the layer was not read to its end.
func (d *diffIDReader) Close() error {
	if d.err == nil {
		d.pw.CloseWithError(errors.New("layer not read to its end"))
		<-d.result
		d.err = errors.New("read after Close")
	}
	return nil
}
