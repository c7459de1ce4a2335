package integrity

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Options are the optional arguments of Check.
type Options struct {
	// Parallel bounds the blobs checked at once per image (default 4); sources that cannot
	// serve blobs concurrently are read one blob at a time.
	Parallel int
}

// Report is what Check found.
type Report struct {
	// Images is the number of images (top-level manifests) checked.
	Images int
	// Manifests is the number of manifests and indexes read and checked.
	Manifests int
	// Blobs and Bytes count the distinct configs and layers checked (each once, however many
	// images share it, unless each image stores its own copy: types.ListedImage.SeparateBlobs).
	Blobs int
	Bytes int64
	// Related is the number of manifests checked because they travel with an image (also
	// counted in Manifests): artifacts that refer to it and manifests named by its digest
	// tags (types.ReferrersLister, types.RelatedSource, cosign's sha256-<hex>.sig tags).
	Related int
	// Problems lists every mismatch, missing blob or unreadable manifest, in the order found.
	Problems []Problem
}

// Problem is one thing wrong with a stored image.
type Problem struct {
	// Image is the image (types.ImageName) in which the problem was found.
	Image string
	// Digest names the manifest or blob at fault; "" when the image could not be opened.
	Digest digest.Digest
	// Err describes it; it wraps types.ErrDigestMismatch, types.ErrBlobNotFound,
	// types.ErrManifestNotFound or the source's own error.
	Err error
}

// String renders the problem, naming the image unless the error does already.
func (p Problem) String() string {
	msg := p.Err.Error()
	if strings.Contains(msg, p.Image) {
		return msg
	}
	return p.Image + ": " + msg
}

// Error is returned by Check when it found problems. Its class is types.ClassVerification
// (exit code 6), whatever the problems are: the content was checked and is not intact.
type Error struct {
	Problems []Problem
}

var _ types.ClassedError = (*Error)(nil)

// Error implements error.
func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "verification failed: " + e.Problems[0].String()
	}
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, p.String())
	}
	return fmt.Sprintf("verification failed, %d problems:\n  %s", len(e.Problems), strings.Join(lines, "\n  "))
}

// ErrorClass implements types.ClassedError.
func (e *Error) ErrorClass() types.ErrorClass { return types.ClassVerification }

// Unwrap returns the problems' errors, so that errors.Is finds their sentinels.
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p.Err
	}
	return errs
}

// Check verifies the images ref selects: when ref implements types.ImageLister, every image
// it lists (all images of oci:PATH, oci-archive:PATH, docker-archive:PATH, dir:STORE, or a
// registry repository named without a tag), otherwise ref's own image, and with each image
// what travels with it: the artifacts that refer to it and the manifests its digest tags
// name, recursively. It returns the report and, when anything is wrong, an *Error; a store
// whose own structure is damaged (a truncated or corrupt archive, a malformed index.json,
// unsafe or duplicate members) is such a problem too. An error that prevented the check
// itself (the store does not exist, the registry refused access or cannot be reached) is
// returned as it is, with a nil report.
func Check(ctx context.Context, ref types.ImageReference, sys *types.SystemContext, opts Options) (*Report, error) {
	if err := types.RequireReferences("verifying an image", ref); err != nil {
		return nil, err
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	c := &checker{sys: sys, opts: opts, mu: &sync.Mutex{}, seen: map[digest.Digest]bool{}, report: &Report{}, tags: &relatedTags{ref: ref, sys: sys}}
	lister, ok := ref.(types.ImageLister)
	if !ok {
		// One image: an image that cannot be opened at all is an error of the check (not
		// found, refused), not a problem found in stored content.
		src, err := ref.NewImageSource(ctx, sys)
		if err != nil {
			return nil, errors.Wrapf(err, "verifying %s", types.ImageName(ref))
		}
		if err := c.image(ctx, types.ListedImage{Ref: ref}, src); err != nil {
			return nil, err
		}
		return c.result()
	}
	images, err := lister.ListImages(ctx, sys)
	if err != nil {
		if !damaged(err) {
			return nil, errors.Wrapf(err, "verifying %s", types.ImageName(ref))
		}
		c.problem(types.ImageName(ref), "", err)
		return c.result()
	}
	// The images first, then the tags of what travels with them (relatedName), which are
	// then checked already, with the image they belong to.
	slices.SortStableFunc(images, func(a, b types.ListedImage) int {
		return cmp.Compare(boolInt(relatedName(a)), boolInt(relatedName(b)))
	})
	for _, img := range images {
		if err := ctx.Err(); err != nil { // local stores do not look at ctx: Ctrl-C stops here
			return nil, err
		}
		if err := c.image(ctx, img, nil); err != nil {
			return nil, err
		}
	}
	return c.result()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *checker) result() (*Report, error) {
	if len(c.report.Problems) > 0 {
		return c.report, &Error{Problems: c.report.Problems}
	}
	return c.report, nil
}

// apart returns a checker for an image whose blobs are stored apart from the others'
// (types.ListedImage.SeparateBlobs): it shares the report, but checks every manifest and
// blob of the image again, since what was checked elsewhere is another copy.
func (c *checker) apart() *checker {
	return &checker{sys: c.sys, opts: c.opts, mu: c.mu, seen: map[digest.Digest]bool{}, report: c.report, tags: c.tags}
}

// checker holds the state of one Check.
type checker struct {
	sys  *types.SystemContext
	opts Options

	mu     *sync.Mutex
	seen   map[digest.Digest]bool // manifests and blobs checked (or being checked)
	report *Report
	tags   *relatedTags
}

// problem records a problem in image; the caller does not hold mu.
func (c *checker) problem(image string, d digest.Digest, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report.Problems = append(c.report.Problems, Problem{Image: image, Digest: d, Err: err})
}

// first reports whether d is checked for the first time, and marks it.
func (c *checker) first(d digest.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[d] {
		return false
	}
	c.seen[d] = true
	return true
}

func (c *checker) count(f func(r *Report)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.report)
}

// damaged reports whether err, from listing a store, says that the store was read and its
// content is not intact (truncated, corrupt, malformed, unsafe), rather than that it could
// not be read at all: missing (3), refused (4), unreachable (7), misnamed (2), interrupted,
// or a file system error (permission denied).
func damaged(err error) bool {
	switch types.Classify(err) {
	case types.ClassOther, types.ClassVerification:
	default:
		return false
	}
	var pathErr *fs.PathError
	return !errors.As(err, &pathErr)
}
