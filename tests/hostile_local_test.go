package tests

import (
	"context"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/inspect"
	"github.com/imgcopy/imgcopy/integrity"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// TestLocalStoreWalksStopOnCancel: describing or verifying every image of a local store stops
// between images once the context ends. Local stores do not look at the context themselves,
// so a store of many images (or a hostile index.json of thousands of entries) kept list-tags,
// inspect and verify going after Ctrl-C or SIGTERM.
func TestLocalStoreWalksStopOnCancel(t *testing.T) {
	t.Parallel()
	ref, err := alltransports.ParseImageName("oci:../examples/hello")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if imgs, err := inspect.ListStore(ctx, ref.(types.ImageLister), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("ListStore = %d images, %v; want context.Canceled", len(imgs), err)
	}
	if rep, err := integrity.Check(ctx, ref, nil, integrity.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Check = %+v, %v; want context.Canceled", rep, err)
	}
}
