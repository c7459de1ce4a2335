package main

import (
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// transports is the one list of transports the CLI knows; there is no global registry.
func transports() types.TransportList { return alltransports.List() }
