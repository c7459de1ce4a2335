package main

import (
	"github.com/imgcopy/imgcopy/dir"
	"github.com/imgcopy/imgcopy/docker"
	dockerarchive "github.com/imgcopy/imgcopy/docker/archive"
	ociarchive "github.com/imgcopy/imgcopy/oci/archive"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// transports is the one list of transports the CLI knows; there is no global registry.
func transports() types.TransportList {
	l, err := types.NewTransportList(
		docker.Transport,
		dockerarchive.Transport,
		layout.Transport,
		ociarchive.Transport,
		dir.Transport,
	)
	if err != nil {
		panic(err) // two transports share a name: a wiring mistake
	}
	return l
}
