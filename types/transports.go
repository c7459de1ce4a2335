package types

import (
	"sort"
	"strings"

	"github.com/pkg/errors"
)

// TransportList is an explicit list of transports; there is no global registry.
type TransportList []ImageTransport

// NewTransportList returns a TransportList, or a usage error when a transport is nil, has a
// name that cannot prefix an image name (empty, or with a colon), or shares its name with
// another.
func NewTransportList(transports ...ImageTransport) (TransportList, error) {
	seen := map[string]bool{}
	for i, t := range transports {
		if t == nil {
			return nil, UsageError{Err: errors.Errorf("transport %d of the list is nil", i)}
		}
		if n := t.Name(); n == "" || strings.Contains(n, ":") {
			return nil, UsageError{Err: errors.Errorf("transport name %q: want a non-empty name without a colon", n)}
		}
		if seen[t.Name()] {
			return nil, errors.Errorf("two transports are named %q", t.Name())
		}
		seen[t.Name()] = true
	}
	return TransportList(transports), nil
}

// Get returns the transport called name, or nil.
func (l TransportList) Get(name string) ImageTransport {
	for _, t := range l {
		if t.Name() == name {
			return t
		}
	}
	return nil
}

// Names returns the sorted transport names.
func (l TransportList) Names() []string {
	names := make([]string, 0, len(l))
	for _, t := range l {
		names = append(names, t.Name())
	}
	sort.Strings(names)
	return names
}

// ParseImageName parses "transport:reference", e.g. "docker://busybox:latest" or
// "oci:/tmp/layout:v1". Every error it returns is in ClassUsage.
func (l TransportList) ParseImageName(imgName string) (ImageReference, error) {
	name, rest, ok := strings.Cut(imgName, ":")
	if !ok {
		return nil, errors.Wrapf(ErrUnknownTransport, "invalid image name %q: expected TRANSPORT:REFERENCE, known transports: %s",
			imgName, strings.Join(l.Names(), ", "))
	}
	t := l.Get(name)
	if t == nil {
		return nil, errors.Wrapf(ErrUnknownTransport, "transport %q in %q (known transports: %s)",
			name, imgName, strings.Join(l.Names(), ", "))
	}
	ref, err := t.ParseReference(rest)
	if err != nil {
		return nil, UsageError{errors.Wrapf(err, "invalid image name %q", imgName)}
	}
	return ref, nil
}

// ParseStoreName parses "transport:store", e.g. "docker://registry.example/mirror" or
// "oci-archive:/tmp/bundle.tar", into a reference to a store of many images. The transport
// must implement StoreTransport.
func (l TransportList) ParseStoreName(storeName string) (StoreReference, error) {
	name, rest, ok := strings.Cut(storeName, ":")
	t := l.Get(name)
	if !ok || t == nil {
		return nil, errors.Wrapf(ErrUnknownTransport, "invalid store name %q: expected TRANSPORT:LOCATION, known transports: %s",
			storeName, strings.Join(l.Names(), ", "))
	}
	st, ok := t.(StoreTransport)
	if !ok {
		return nil, errors.Wrapf(ErrUsage, "the %s transport cannot hold several images (in %q)", name, storeName)
	}
	ref, err := st.ParseStoreReference(rest)
	if err != nil {
		return nil, UsageError{errors.Wrapf(err, "invalid store name %q", storeName)}
	}
	return ref, nil
}
