// Package iolimits reads small metadata (manifests, configs, index files, token responses)
// whole, but never more than a fixed cap, so hostile input cannot exhaust memory.
package iolimits

import (
	"io"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

const (
	// MaxManifestBodySize caps manifests and indexes.
	MaxManifestBodySize = 4 << 20
	// MaxConfigBodySize caps image configs.
	MaxConfigBodySize = 4 << 20
	// MaxIndexFileSize caps index.json, manifest.json and repositories files.
	MaxIndexFileSize = 4 << 20
	// MaxAuthTokenBodySize caps token and auth responses.
	MaxAuthTokenBodySize = 1 << 20
	// MaxErrorBodySize caps registry error bodies.
	MaxErrorBodySize = 64 << 10
)

// ErrTooLarge is types.ErrTooLarge, returned (wrapped) when input exceeds its cap.
var ErrTooLarge = types.ErrTooLarge

// ReadAtMost reads r to EOF, failing with ErrTooLarge once more than limit bytes arrive.
// It never allocates more than limit+1 bytes of content.
func ReadAtMost(r io.Reader, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, errors.Wrapf(ErrTooLarge, "more than %d bytes", limit)
	}
	return b, nil
}
