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
