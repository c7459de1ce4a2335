// Package archive implements the docker-archive: transport, which reads and writes the
// `docker save` format (see package docker/tarfile for the format itself).
//
// Reading (docker-archive:PATH[:NAME:TAG] or docker-archive:PATH:@N) indexes the tar once and
// serves layers as sections of the file; a gzip- or zstd-compressed archive (`docker save |
// gzip`), or one read from a pipe, is decompressed once into a temporary file (see
// internal/archivefile). docker-archive:PATH alone lists every image (types.ImageLister).
// Writing produces an archive that `docker load` accepts and that also holds an OCI layout,
// so that digests survive a round trip; SystemContext.DockerArchiveClassic writes the
// classic uncompressed form instead. Writing into an existing archive adds the image, or
// replaces the one of the same name, and keeps the others; a StoreWriter (the transport is a
// types.StoreTransport) writes many images in one rewrite.
package archive

import (
	"strconv"
	"strings"

	dref "github.com/distribution/reference"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Transport is the docker-archive: transport.
var Transport types.ImageTransport = archiveTransport{}

type archiveTransport struct{}

// Name implements types.ImageTransport.
func (archiveTransport) Name() string { return "docker-archive" }

// ParseReference implements types.ImageTransport: PATH, PATH:NAME[:TAG] (TAG defaults to
// latest) or PATH:@N (the N-th image, 0-based, for reading). PATH ends at the first colon.
func (archiveTransport) ParseReference(s string) (types.ImageReference, error) {
	path, rest, _ := strings.Cut(s, ":")
	if rest == "" {
		return NewReference(path, nil)
	}
	if n, ok := strings.CutPrefix(rest, "@"); ok {
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || strconv.Itoa(i) != n {
			return nil, types.UsageError{Err: errors.Errorf("invalid image index %q in docker-archive reference %q", rest, s)}
		}
		return NewIndexReference(path, i)
	}
	named, err := dref.ParseNormalizedNamed(rest)
	if err != nil {
		return nil, types.UsageError{Err: errors.Wrapf(err, "parsing image name %q in docker-archive reference", rest)}
	}
	if _, ok := named.(dref.Digested); ok {
		return nil, types.UsageError{Err: errors.Errorf("docker-archive reference %q names a digest; use NAME:TAG or @N", s)}
	}
	return NewReference(path, dref.TagNameOnly(named).(dref.NamedTagged))
}
