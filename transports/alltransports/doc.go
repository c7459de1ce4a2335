// Package alltransports lists every transport imgcopy ships, for programs that want them all
// (the CLI among them). There is no global registry: a program that wants fewer transports,
// or one of its own, builds its own list with types.NewTransportList.
//
// # Getting started
//
// ParseImageName turns "TRANSPORT:REFERENCE" into a types.ImageReference for copy.Image,
// inspect or integrity; ParseStoreName turns "TRANSPORT:LOCATION" into a
// types.StoreReference, where a sync or a bundle writes many images. To add a transport of
// your own (see docs/transports.md), extend the list:
//
//	list, err := types.NewTransportList(append(alltransports.List(), mine)...)
//	ref, err := list.ParseImageName("mine:...")
//
// # Stability
//
// List, ParseImageName and ParseStoreName are stable. List may gain transports in a later
// version; types.NewTransportList then refuses a custom transport of the same name with an
// error rather than choosing one silently.
package alltransports
