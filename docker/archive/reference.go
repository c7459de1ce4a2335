package archive

import (
	"context"
	"strconv"

	dref "github.com/distribution/reference"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/docker/tarfile"
	"github.com/imgcopy/imgcopy/types"
)

// reference is a docker-archive image: a path and either an optional name or an index.
type reference struct {
	path   string
	named  dref.NamedTagged // nil when not given
	index  int              // -1 when not given
	writer *tarfile.Writer  // set for references of a StoreWriter
}

var _ types.ImageReference = (*reference)(nil)

// NewReference returns a reference to the image named named (may be nil: the only image when
// reading, an unnamed image when writing) in the archive at path.
func NewReference(path string, named dref.NamedTagged) (types.ImageReference, error) {
	if path == "" {
		return nil, types.UsageError{Err: errors.New("docker-archive reference without a path")}
	}
	if named != nil {
		if _, ok := named.(dref.Digested); ok {
			return nil, types.UsageError{Err: errors.Errorf("docker-archive reference %s contains a digest", named.String())}
		}
	}
	return &reference{path: path, named: named, index: -1}, nil
}

// NewIndexReference returns a reference to the index-th image (0-based) of the archive at
// path; such references can only be read.
func NewIndexReference(path string, index int) (types.ImageReference, error) {
	if path == "" {
		return nil, types.UsageError{Err: errors.New("docker-archive reference without a path")}
	}
	if index < 0 {
		return nil, types.UsageError{Err: errors.Errorf("invalid docker-archive image index %d", index)}
	}
	return &reference{path: path, index: index}, nil
}

// Transport implements types.ImageReference.
func (r *reference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport implements types.ImageReference.
func (r *reference) StringWithinTransport() string {
	switch {
	case r.index >= 0:
		return r.path + ":@" + strconv.Itoa(r.index)
	case r.named != nil:
		return r.path + ":" + r.named.String()
	}
	return r.path
}

// DockerReference implements types.ImageReference.
func (r *reference) DockerReference() dref.Named {
	if r.named == nil {
		return nil
	}
	return r.named
}

// NewImageSource implements types.ImageReference.
func (r *reference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	rd, err := tarfile.NewReader(ctx, r.path, sys)
	if err != nil {
		return nil, err
	}
	pos, err := rd.Choose(r.named, r.index)
	if err == nil {
		var src types.ImageSource
		if src, err = tarfile.NewSource(rd, true, r, pos); err == nil {
			return src, nil
		}
	}
	rd.Close()
	return nil, errors.Wrapf(err, "opening %s", types.ImageName(r))
}

// NewImageDestination implements types.ImageReference. Unless the reference belongs to a
// StoreWriter, the archive is rewritten on Commit: with this image added, or replacing the
// image of the same name, and the other images of the archive kept.
func (r *reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	if r.index >= 0 {
		return nil, errors.Errorf("cannot write to %s: an @N reference can only be read", types.ImageName(r))
	}
	names := []dref.NamedTagged{}
	if r.named != nil {
		names = append(names, r.named)
	}
	if sys != nil {
		names = append(names, sys.DockerArchiveAdditionalTags...)
	}
	if r.writer != nil {
		return tarfile.NewDestination(r.writer, false, r, names, sys), nil
	}
	opts, err := writerOptions(r.path, sys)
	if err != nil {
		return nil, err
	}
	w, err := tarfile.NewWriter(ctx, r.path, opts)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s for writing", types.ImageName(r))
	}
	return tarfile.NewDestination(w, true, r, names, sys), nil
}

var _ types.TagLister = (*reference)(nil)

// ListTags implements types.TagLister: every RepoTag in the archive's manifest.json, in
// archive order, each once.
func (r *reference) ListTags(ctx context.Context, sys *types.SystemContext) ([]string, error) {
	rd, err := tarfile.NewReader(ctx, r.path, sys)
	if err != nil {
		return nil, errors.Wrapf(err, "listing tags in %s", types.ImageName(r))
	}
	defer rd.Close()
	tags, seen := []string{}, map[string]bool{}
	for _, it := range rd.Items() {
		for _, t := range it.RepoTags {
			if !seen[t] {
				tags, seen[t] = append(tags, t), true
			}
		}
	}
	return tags, nil
}
