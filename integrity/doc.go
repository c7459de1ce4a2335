// Package integrity checks stored images against their digests: every manifest and index a
// reference selects (all images of a layout, an archive or, where the transport can list
// them, a registry repository), and every config and layer they reference, streamed through
// a digest and size check with flat memory. It is the library behind `imgcopy verify`; like
// inspect it reads only through types.ImageSource and never imports a transport.
//
// # Getting started
//
// Check returns a Report and, when anything is wrong, an *Error listing the problems, whose
// class (types.Classify) is types.ClassVerification; an error that kept the check from
// running (the store does not exist, access was refused) comes back as it is.
//
// VerifiedBlob checks a single blob stream, for programs that read blobs from a
// types.ImageSource themselves instead of copying them with copy.Image.
//
// # Stability
//
// Check, VerifiedBlob, Options, Report, Problem and Error are stable; Options and Report may gain fields.
// The order of Report.Problems follows the order the check found them in, which depends on
// the concurrency of the check and is not stable.
package integrity
