// Command bundle writes the images named on the command line into one store (an oci-archive,
// a docker-archive or an OCI layout) in one run, through the store's types.StoreWriter, a few
// images at a time: the path a bundle takes through the library. bench/bundle.sh times it; once
// `imgcopy sync` writes bundles, the script can call that instead.
//
// Usage: bundle [-j N] [-src-tls-verify=false] [-cpuprofile FILE] STORE SRC...
//
// STORE is e.g. oci-archive:/tmp/bundle.tar; each SRC (e.g. docker://host/bundle/app-00:bench)
// is stored under its repository path and tag ("bundle/app-00:bench").
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"

	dref "github.com/distribution/reference"
	"golang.org/x/sync/errgroup"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

func main() {
	jobs := flag.Int("j", 4, "images copied at once")
	tlsVerify := flag.Bool("src-tls-verify", true, "require HTTPS and verify certificates for the source registry")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to `FILE`")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bundle: %v\n", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: bundle [-j N] [-src-tls-verify=false] STORE SRC...")
		os.Exit(2)
	}
	if err := run(context.Background(), flag.Arg(0), flag.Args()[1:], *jobs, !*tlsVerify); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintf(os.Stderr, "bundle: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, storeName string, sources []string, jobs int, insecure bool) error {
	store, err := alltransports.ParseStoreName(storeName)
	if err != nil {
		return err
	}
	imageIn := store.ImageReference
	var w types.StoreWriter
	if opener, ok := store.(types.StoreWriterOpener); ok {
		if w, err = opener.NewStoreWriter(ctx, nil); err != nil {
			return err
		}
		defer w.Close()
		imageIn = w.ImageReference
	}
	sys := &types.SystemContext{}
	if insecure {
		sys.InsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, s := range sources {
		src, err := alltransports.ParseImageName(s)
		if err != nil {
			return err
		}
		named, ok := src.DockerReference().(dref.NamedTagged)
		if !ok {
			return fmt.Errorf("%s: want a reference with a tag", s)
		}
		dest, err := imageIn(dref.Path(named) + ":" + named.Tag())
		if err != nil {
			return err
		}
		g.Go(func() error {
			_, err := copier.Image(gctx, dest, src, &copier.Options{SourceCtx: sys})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if w != nil {
		return w.Commit(ctx)
	}
	return nil
}
