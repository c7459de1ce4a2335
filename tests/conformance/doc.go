// Package conformance is the source/destination suite every transport runs from its own
// tests, in-tree or not: a transport written outside this module imports it from a _test.go
// file and calls Run, exactly as dir, oci, oci-archive, docker-archive and docker do.
//
// Run writes images through the types.ImageDestination call order (blobs, manifests, Commit,
// Close) and reads them back through types.ImageSource, checking what docs/transports.md
// asks of a transport:
//
//   - round trips of single images of each accepted manifest type and of multi-platform
//     indexes, byte for byte, with unknown (-1) sizes and without digests, and of empty blobs;
//   - references that survive their transport's parser;
//   - typed errors: a missing blob is ErrBlobNotFound, a missing image or instance
//     ErrManifestNotFound, content that does not match its digest or size ErrDigestMismatch,
//     a cancelled context context.Canceled;
//   - atomicity: nothing is visible before Commit, and a failing, cancelled or mismatching
//     stream (also one the caller verifies, PutBlobOptions.Verified) leaves nothing reusable
//     and, with Harness.Snapshot, nothing at all behind;
//   - concurrency, when Properties() allows it: PutBlob of the same blobs at once, GetBlob;
//   - reuse of committed blobs, and no reuse when the copy requires another compression;
//     overwriting an image with another;
//   - the optional interfaces the transport implements: ManifestChecker, ManifestDigester,
//     ImageLister, TagLister and ImageDeleter.
//
// The suite only uses the types package, so it is transport-agnostic; it builds its test
// images itself (BuildImage, BuildIndex: small, deterministic, valid). It must only be
// imported from _test.go files.
//
// A transport test runs it like this:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Harness{
//			NewReference: func(t *testing.T) types.ImageReference {
//				ref, err := NewReference(filepath.Join(t.TempDir(), "img"))
//				if err != nil {
//					t.Fatal(err)
//				}
//				return ref
//			},
//			Snapshot: func(t *testing.T, ref types.ImageReference) string {
//				return conformance.DirSnapshot(t, filepath.Dir(ref.StringWithinTransport()))
//			},
//		})
//	}
//
// A transport that only reads (images served from an embed.FS, a web server, a read-only
// mount) cannot have the suite write its test images; it runs RunSource instead, whose
// SourceHarness.Serve stores each test image (a Stored: manifests and blobs, byte for byte)
// where the transport reads, and which checks the source half of the contract and that
// NewImageDestination refuses with a usage error.
//
// RunLargeBlob, called from a benchmark, checks that memory stays flat while a large blob
// streams through PutBlob and GetBlob.
//
// # Stability
//
// Run, Harness, RunSource, SourceHarness, Stored, RunLargeBlob and DirSnapshot are stable:
// fields may be added to Harness and SourceHarness (always optional) and checks may be added
// to Run and RunSource (a transport that follows the contract of the
// types package keeps passing), but nothing is removed or renamed. The image builders
// (BuildImage, BuildIndex, Image, Index, Blob, DeterministicBytes) serve the in-tree tests
// and may change.
package conformance
