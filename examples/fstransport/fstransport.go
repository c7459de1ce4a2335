// Package fstransport is a small example of a read-only imgcopy transport: it serves images
// from an fs.FS (an embed.FS compiled into a program, an os.DirFS, a testing/fstest.MapFS),
// and passes conformance.RunSource, the suite for transports that only read. It is the
// read-only companion of memtransport; docs/transports.md explains the rules both follow.
//
// The file system holds, for an image NAME, NAME/manifest.json (the top-level manifest, byte
// for byte) and optionally NAME/mediatype (its MIME type), and, shared by every image,
// blobs/ALG/HEX for each config, layer and instance manifest:
//
//	//go:embed images
//	var images embed.FS
//
//	sub, err := fs.Sub(images, "images")
//	transports, err := types.NewTransportList(append(alltransports.List(), fstransport.New("embedded", sub))...)
//	ref, err := transports.ParseImageName("embedded:app")
//
// Stability: this package is an example; its own API may change with the guide.
package fstransport

import (
	"context"
	"io"
	"io/fs"
	"path"
	"strings"

	distref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Transport serves the images of one file system under one transport name.
type Transport struct {
	name string
	fsys fs.FS
}

// New returns a transport called name serving the images in fsys.
func New(name string, fsys fs.FS) *Transport { return &Transport{name: name, fsys: fsys} }

var (
	_ types.ImageTransport = (*Transport)(nil)
	_ types.ImageReference = reference{}
	_ types.ImageSource    = (*source)(nil)
)

// Name implements types.ImageTransport.
func (t *Transport) Name() string { return t.name }

// ParseReference implements types.ImageTransport: the name of an image directory. It does no
// I/O; a name that is not a valid fs.FS path is a usage error.
func (t *Transport) ParseReference(s string) (types.ImageReference, error) {
	if s == "" || s == "." || !fs.ValidPath(s) || strings.HasPrefix(s, "blobs/") || s == "blobs" {
		return nil, types.UsageError{Err: errors.Errorf("%s: invalid image name %q", t.name, s)}
	}
	return reference{t: t, name: s}, nil
}

// reference names one image of the file system.
type reference struct {
	t    *Transport
	name string
}

// Transport implements types.ImageReference.
func (r reference) Transport() types.ImageTransport { return r.t }

// StringWithinTransport implements types.ImageReference.
func (r reference) StringWithinTransport() string { return r.name }

// DockerReference implements types.ImageReference: these images carry no registry name.
func (r reference) DockerReference() distref.Named { return nil }

// NewImageSource implements types.ImageReference. A missing image is ErrManifestNotFound.
func (r reference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	if _, err := fs.Stat(r.t.fsys, path.Join(r.name, "manifest.json")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = types.ErrManifestNotFound
		}
		return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
	}
	return &source{ref: r}, nil
}

// NewImageDestination implements types.ImageReference: the transport cannot write, which is
// the caller's mistake (a usage error, exit code 2 in the CLI).
func (r reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	return nil, types.UsageError{Err: errors.Errorf("%s: is read-only, cannot write %s", r.t.name, types.ImageName(r))}
}

// source reads one image. fs.FS values may be read concurrently, so blobs may be too.
type source struct {
	ref reference
}

// Reference implements types.ImageSource.
func (s *source) Reference() types.ImageReference { return s.ref }

// Properties implements types.ImageSource.
func (s *source) Properties() types.SourceProperties {
	return types.SourceProperties{ConcurrentBlobs: true}
}

// GetManifest implements types.ImageSource. An instance's MIME type is not stored: ""
// lets the caller read it from the manifest.
func (s *source) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	if instance == nil {
		b, err := s.readSmall(path.Join(s.ref.name, "manifest.json"), types.ErrManifestNotFound)
		if err != nil {
			return nil, "", errors.Wrapf(err, "reading the manifest of %s", types.ImageName(s.ref))
		}
		mt, err := fs.ReadFile(s.ref.t.fsys, path.Join(s.ref.name, "mediatype"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, "", errors.Wrapf(err, "reading the manifest type of %s", types.ImageName(s.ref))
		}
		return b, strings.TrimSpace(string(mt)), nil
	}
	p, err := blobPath(*instance)
	if err != nil {
		return nil, "", err
	}
	b, err := s.readSmall(p, types.ErrManifestNotFound)
	if err != nil {
		return nil, "", errors.Wrapf(err, "reading instance %s of %s", instance, types.ImageName(s.ref))
	}
	return b, "", nil
}

// maxManifest bounds what GetManifest reads into memory.
const maxManifest = 4 << 20

// readSmall reads a manifest file, at most maxManifest bytes; a missing one is notFound.
func (s *source) readSmall(p string, notFound error) ([]byte, error) {
	f, err := s.ref.t.fsys.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err == nil && len(b) > maxManifest {
		err = errors.Wrapf(types.ErrTooLarge, "%s is larger than %d bytes", p, maxManifest)
	}
	return b, err
}

// GetBlob implements types.ImageSource: a stream over the file, never read into memory.
func (s *source) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	p, err := blobPath(info.Digest)
	if err != nil {
		return nil, -1, err
	}
	f, err := s.ref.t.fsys.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		err = types.ErrBlobNotFound
	}
	if err != nil {
		return nil, -1, errors.Wrapf(err, "fetching blob %s from %s", info.Digest, types.ImageName(s.ref))
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, nil
}

// Close implements types.ImageSource; there is nothing to release.
func (s *source) Close() error { return nil }

// blobPath is where the blob d lives; a malformed digest is a missing blob.
func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errors.Wrapf(types.ErrBlobNotFound, "invalid digest %q: %v", d, err)
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}
