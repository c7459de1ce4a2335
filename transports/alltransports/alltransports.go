package alltransports

import (
	"github.com/imgcopy/imgcopy/dir"
	"github.com/imgcopy/imgcopy/docker"
	dockerarchive "github.com/imgcopy/imgcopy/docker/archive"
	ociarchive "github.com/imgcopy/imgcopy/oci/archive"
	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// List returns the standard transports: docker, docker-archive, oci, oci-archive and dir.
func List() types.TransportList {
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

// ParseImageName parses "transport:reference" with the standard transports, e.g.
// "docker://busybox:latest" or "oci:/tmp/layout:v1".
func ParseImageName(name string) (types.ImageReference, error) {
	return List().ParseImageName(name)
}

// ParseStoreName parses "transport:store" with the standard transports, e.g.
// "docker://registry.example/mirror" or "oci:/srv/bundle", into a store of many images.
func ParseStoreName(name string) (types.StoreReference, error) {
	return List().ParseStoreName(name)
}
