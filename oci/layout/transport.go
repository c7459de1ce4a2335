package layout

import (
	"regexp"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Transport is the "oci" transport.
var Transport types.ImageTransport = ociTransport{}

type ociTransport struct{}

// Name implements types.ImageTransport.
func (ociTransport) Name() string { return "oci" }

// ParseReference implements types.ImageTransport: PATH, PATH:REF or PATH@DIGEST.
func (ociTransport) ParseReference(ref string) (types.ImageReference, error) {
	path, name, d, err := SplitReference(ref)
	if err != nil {
		return nil, err
	}
	return newReference(path, name, d), nil
}

// NewReference returns a reference to the image called name (a bare tag or a full reference,
// "" for the layout's only image) in the layout at path. It does not touch the disk.
func NewReference(path, name string) (types.ImageReference, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if name != "" {
		if err := ValidateRefName(name); err != nil {
			return nil, err
		}
	}
	return newReference(path, name, ""), nil
}

// NewDigestReference returns a reference to the image whose manifest digest is d in the
// layout at path (oci:PATH@DIGEST). Such a reference can be read, not written.
func NewDigestReference(path string, d digest.Digest) (types.ImageReference, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, types.UsageError{Err: errors.Wrapf(err, "invalid digest %q", d)}
	}
	return newReference(path, "", d), nil
}

// refNameRE is the grammar of org.opencontainers.image.ref.name (annotations.md):
// component ("/" component)*, component = alphanum+ (separator alphanum+)*, separators
// "-._:@+" or "--".
var refNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$`)
})

// ValidateRefName checks that name is a valid org.opencontainers.image.ref.name value.
func ValidateRefName(name string) error {
	if len(name) > 4096 || !refNameRE().MatchString(name) {
		return types.UsageError{Err: errors.Errorf("invalid image name %q in an OCI layout reference: want a tag or a reference such as example.com/repo:tag", name)}
	}
	return nil
}

func checkPath(path string) error {
	if path == "" {
		return types.UsageError{Err: errors.New("OCI layout reference needs a directory path")}
	}
	if strings.ContainsRune(path, 0) {
		return types.UsageError{Err: errors.Errorf("OCI layout path %q contains a NUL byte", path)}
	}
	return nil
}

// digestAlgorithmRE is the algorithm part of a digest (descriptor.md).
var digestAlgorithmRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*$`) })

// SplitReference parses "PATH", "PATH:NAME" or "PATH@DIGEST" (the part after "oci:" or
// "oci-archive:"). PATH ends at the first ":", as in skopeo, so a path cannot contain one;
// "@alg:hex" at the end selects by digest.
func SplitReference(ref string) (path, name string, d digest.Digest, err error) {
	if at := strings.LastIndexByte(ref, '@'); at >= 0 {
		if alg, _, ok := strings.Cut(ref[at+1:], ":"); ok && digestAlgorithmRE().MatchString(alg) && !strings.Contains(ref[:at], ":") {
			d = digest.Digest(ref[at+1:])
			if err := d.Validate(); err != nil {
				return "", "", "", types.UsageError{Err: errors.Wrapf(err, "invalid digest %q in OCI layout reference", d)}
			}
			path = ref[:at]
			return path, "", d, checkPath(path)
		}
	}
	path, name, _ = strings.Cut(ref, ":")
	if err := checkPath(path); err != nil {
		return "", "", "", err
	}
	if name != "" {
		if err := ValidateRefName(name); err != nil {
			return "", "", "", err
		}
	}
	return path, name, "", nil
}
