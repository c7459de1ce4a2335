// Package memtransport is a complete, small example of an imgcopy transport: a store of
// images kept in memory, usable as a source and as a destination, that passes the
// conformance suite (tests/conformance) unchanged. It is the companion of
// docs/transports.md, which explains every rule it follows; read the two side by side.
//
// A Store is the transport: give it a name and add it to a transport list, and every
// imgcopy API (copy.Image, inspect, integrity) can use it:
//
//	store := memtransport.New("mem")
//	transports, err := types.NewTransportList(append(alltransports.List(), store)...)
//	ref, err := transports.ParseImageName("mem:team/app:1.0")
//
// Images are named by any non-empty string ("team/app:1.0"); blobs and manifests are shared
// by every image of the store and kept by digest. Everything lives in memory, so the store
// suits tests, examples and small images, not production.
//
// Stability: this package is an example. It follows the types contract, but its own API may
// change with the guide.
package memtransport
