package dir

import (
	"strings"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Transport is the "dir" transport.
var Transport types.ImageTransport = dirTransport{}

type dirTransport struct{}

// Name implements types.ImageTransport.
func (dirTransport) Name() string { return "dir" }

// ParseReference implements types.ImageTransport; ref is the directory path.
func (dirTransport) ParseReference(ref string) (types.ImageReference, error) {
	return NewReference(ref)
}

// NewReference returns a reference to the image stored in the directory path. It does not
// touch the disk.
func NewReference(path string) (types.ImageReference, error) {
	if path == "" {
		return nil, types.UsageError{Err: errors.New("dir: reference needs a directory path")}
	}
	if strings.ContainsRune(path, 0) {
		return nil, types.UsageError{Err: errors.Errorf("dir: path %q contains a NUL byte", path)}
	}
	return reference{path: path}, nil
}
