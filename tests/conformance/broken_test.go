package conformance

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/dir"
	"github.com/imgcopy/imgcopy/types"
)

// The suite must reject a broken transport, or passing it proves nothing. Each fault below
// breaks one rule of the contract in a wrapper around the dir transport; the suite runs
// against it in a child process (a failing suite fails the test that runs it, so it cannot
// run in this one) and must fail in the subtest that checks that rule, while the same
// subtest passes against the wrapper without the fault.

// brokenEnv names the fault for the child process; the child test skips without it.
const brokenEnv = "IMGCOPY_CONFORMANCE_FAULT"

// fault is one rule a broken transport breaks, and the subtest that must catch it.
type fault struct {
	fault, subtest, what string
}

// faults maps each fault to the subtest of Run that must catch it.
var faults = []fault{
	{"skips-verification", "WrongDigest", "stores content under a digest it never checked"},
	{"visible-before-commit", "CloseWithoutCommit", "makes the image visible at PutManifest"},
	{"untyped-not-found", "MissingBlob", "reports a missing blob without ErrBlobNotFound"},
	{"ignores-cancel", "CancelMidBlob", "ignores a cancelled context"},
	{"leaves-temp-file", "FailingStream", "leaves a temporary file behind after a failed PutBlob"},
	{"stops-at-size", "Verified", "publishes a verified blob without reading to EOF"},
	{"reuses-anything", "MissingBlob", "claims to hold blobs it does not have"},
	{"ignores-required-compression", "ReuseRequiredCompression", "reuses a blob whose compression the copy must change"},
	{"has-any-manifest", "HasManifest", "claims to hold manifests it does not have"},
	{"unparsable-reference", "ReferenceRoundTrip", "cannot parse its own references"},
}

func TestSuiteRejectsBrokenTransports(t *testing.T) {
	checkRejects(t, "TestBrokenTransport", faults)
}

// checkRejects runs test (which runs the suite against the wrapper) in a child process once
// per fault: the fault's subtest must pass without the fault and fail with it.
func checkRejects(t *testing.T, test string, faults []fault) {
	if _, ok := os.LookupEnv(brokenEnv); ok {
		t.Skip("running as the child of a test of the suite")
	}
	t.Parallel()
	for _, f := range faults {
		t.Run(f.fault, func(t *testing.T) {
			t.Parallel()
			if out, err := runChild(t, test, "", f.subtest); err != nil || !strings.Contains(out, "--- PASS: "+test+"/"+f.subtest) {
				t.Fatalf("subtest %s fails (or does not run) against the wrapper without a fault: %v\n%s", f.subtest, err, out)
			}
			out, err := runChild(t, test, f.fault, f.subtest)
			if err == nil {
				t.Fatalf("the suite passed a transport that %s:\n%s", f.what, out)
			}
			if !strings.Contains(out, "--- FAIL: "+test+"/"+f.subtest) {
				t.Fatalf("the suite failed, but not in %s, for a transport that %s:\n%s", f.subtest, f.what, out)
			}
		})
	}
}

// runChild runs subtest of test (TestBrokenTransport, TestBrokenSource) in a child process
// with fault.
func runChild(t *testing.T, test, fault, subtest string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+test+"$/^"+regexp.QuoteMeta(subtest)+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), brokenEnv+"="+fault)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestBrokenTransport runs the suite against the wrapper with the fault its parent names.
func TestBrokenTransport(t *testing.T) {
	fault, ok := os.LookupEnv(brokenEnv)
	if !ok {
		t.Skip("run by TestSuiteRejectsBrokenTransports")
	}
	tr := &brokenTransport{fault: fault}
	Run(t, Harness{
		NewReference: func(t *testing.T) types.ImageReference {
			ref, err := tr.ParseReference(filepath.Join(t.TempDir(), "img"))
			if err != nil {
				t.Fatal(err)
			}
			return ref
		},
		Snapshot: func(t *testing.T, ref types.ImageReference) string {
			return DirSnapshot(t, filepath.Dir(ref.(*brokenRef).path))
		},
	})
}

// brokenTransport wraps dir: with one fault.
type brokenTransport struct {
	fault    string
	readOnly bool // NewImageDestination fails (RunSource's wrapper)
}

var (
	_ types.ImageTransport   = (*brokenTransport)(nil)
	_ types.ImageReference   = (*brokenRef)(nil)
	_ types.ImageSource      = (*brokenSource)(nil)
	_ types.ImageDestination = (*brokenDest)(nil)
	_ types.ManifestChecker  = (*brokenDest)(nil)
)

func (b *brokenTransport) Name() string { return "broken-dir" }

func (b *brokenTransport) ParseReference(s string) (types.ImageReference, error) {
	if b.fault == "unparsable-reference" && strings.HasSuffix(s, "#") {
		return nil, errors.New("broken: cannot parse a reference")
	}
	inner, err := dir.NewReference(strings.TrimSuffix(s, "#"))
	if err != nil {
		return nil, err
	}
	return &brokenRef{ImageReference: inner, t: b, path: strings.TrimSuffix(s, "#")}, nil
}

type brokenRef struct {
	types.ImageReference
	t    *brokenTransport
	path string
}

func (r *brokenRef) Transport() types.ImageTransport { return r.t }

func (r *brokenRef) StringWithinTransport() string {
	if r.t.fault == "unparsable-reference" {
		return r.path + "#"
	}
	return r.path
}

func (r *brokenRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	src, err := r.ImageReference.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return &brokenSource{ImageSource: src, fault: r.t.fault}, nil
}

func (r *brokenRef) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	if r.t.readOnly {
		return nil, errReadOnly
	}
	dest, err := r.ImageReference.NewImageDestination(ctx, sys)
	if err != nil {
		return nil, err
	}
	return &brokenDest{ImageDestination: dest, fault: r.t.fault, path: r.path}, nil
}

type brokenSource struct {
	types.ImageSource
	fault string
}

func (s *brokenSource) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	rc, n, err := s.ImageSource.GetBlob(ctx, info, opts)
	if err != nil && s.fault == "untyped-not-found" {
		return nil, 0, errors.New(err.Error())
	}
	return rc, n, err
}

type brokenDest struct {
	types.ImageDestination
	fault string
	path  string
}

func (d *brokenDest) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	switch d.fault {
	case "reuses-anything":
		return types.ReusedBlob{Info: info}, true, nil
	case "ignores-required-compression":
		opts.RequiredCompression = ""
	}
	return d.ImageDestination.TryReusingBlob(ctx, info, opts)
}

func (d *brokenDest) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	switch d.fault {
	case "skips-verification":
		info.Digest, info.Size = "", -1
	case "ignores-cancel":
		ctx = context.WithoutCancel(ctx)
	case "stops-at-size":
		if info.Size >= 0 {
			r = io.LimitReader(r, info.Size)
		}
	}
	stored, err := d.ImageDestination.PutBlob(ctx, r, info, opts)
	if err != nil && d.fault == "leaves-temp-file" {
		_ = os.WriteFile(filepath.Join(filepath.Dir(d.path), "img.partial"), []byte("half a blob"), 0o644)
	}
	return stored, err
}

func (d *brokenDest) PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error {
	if err := d.ImageDestination.PutManifest(ctx, body, mimeType, instance); err != nil {
		return err
	}
	if d.fault == "visible-before-commit" && instance == nil {
		return d.ImageDestination.Commit(ctx, types.CommitOptions{})
	}
	return nil
}

// HasManifest makes the wrapper a types.ManifestChecker (dir is none): it answers from the
// manifest.json of the image directory, or says yes to anything with the fault.
func (d *brokenDest) HasManifest(ctx context.Context, dg digest.Digest) (bool, error) {
	if d.fault == "has-any-manifest" {
		return true, nil
	}
	b, err := os.ReadFile(filepath.Join(d.path, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil && digest.FromBytes(b) == dg, err
}
