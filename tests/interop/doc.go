// Package interop checks imgcopy against the tools people would otherwise use: real peers
// (skopeo, umoci, crane, regctl and the CNCF distribution registry) read what the imgcopy binary
// writes, and imgcopy reads what they write, with digests agreeing wherever the bytes are copied
// unchanged.
//
// The tests need those tools in PATH (bench/install-peers.sh installs them, pinned). They run
// when IMGCOPY_INTEROP=1, and a missing tool is then a failure; otherwise every test skips and
// says so. Run them with:
//
//	IMGCOPY_INTEROP=1 go test ./tests/interop/...
//
// The package holds no non-test code besides this comment.
package interop
