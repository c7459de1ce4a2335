package integrity

import (
	"io"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/types"
)

// VerifiedBlob wraps a blob stream as types.ImageSource.GetBlob returns it so that reading
// it checks the content against info, as copy.Image checks every blob: reading past info.Size
// fails at once, and at the end the reader returns a types.DigestMismatchError (errors.Is
// types.ErrDigestMismatch) instead of io.EOF when the size (unless -1) or the digest differs.
// A source need not verify what it serves, so a program that reads blobs itself (to unpack a
// layer, say) should read them through this and use the content only once EOF was reached
// without error. Closing the result closes rc. An empty or malformed info.Digest is a usage
// error.
func VerifiedBlob(rc io.ReadCloser, info types.BlobInfo) (io.ReadCloser, error) {
	if info.Digest == "" {
		return nil, types.UsageError{Err: errors.New("verifying a blob needs its digest")}
	}
	v, err := verify.NewReader(rc, info.Digest, info.Size)
	if err != nil {
		return nil, types.UsageError{Err: err}
	}
	return verifiedBlob{Reader: v, Closer: rc}, nil
}

type verifiedBlob struct {
	*verify.Reader
	io.Closer
}
