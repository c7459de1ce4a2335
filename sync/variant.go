package sync

import (
	"fmt"
	"strings"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

// copyOptions returns the options of the copy of it: Options.Copy with the source's
// credentials and platform choice.
func (p *Plan) copyOptions(it *Item) copier.Options {
	o := p.opts.Copy
	o.SourceCtx = p.sourceCtx(it.source)
	if it.source != nil && it.source.Platforms != nil {
		o.MultiArch, o.Platforms = it.source.Platforms.MultiArch, it.source.Platforms.List
	}
	// A mirror asks every image for the same platforms: an image that lacks some of them
	// gets those it has (regsync does not fail on it either) rather than failing on every run.
	o.SkipMissingPlatforms = true
	return o
}

// variant summarizes everything besides the source manifest that decides which manifest a
// copy of it writes, as the key of the blob-info cache's manifest mappings.
func (p *Plan) variant(it *Item) string {
	o := p.copyOptions(it)
	var b strings.Builder
	fmt.Fprintf(&b, "sync-v1 dest=%s format=%s multiarch=%d platforms=", p.store.Transport().Name(), o.ForceManifestMIMEType, o.MultiArch)
	for _, pl := range o.Platforms {
		b.WriteString(platformString(pl) + ",")
	}
	fmt.Fprintf(&b, " compress=%s", o.DestinationCompression)
	if o.DestinationCompressionLevel != nil {
		fmt.Fprintf(&b, ":%d", *o.DestinationCompressionLevel)
	}
	fmt.Fprintf(&b, " decompress=%t", o.DestinationDecompress)
	for _, sys := range []*types.SystemContext{o.SourceCtx, o.DestinationCtx} {
		if sys != nil {
			fmt.Fprintf(&b, " system=%s/%s/%s", sys.OSChoice, sys.ArchitectureChoice, sys.VariantChoice)
		}
	}
	return b.String()
}

func platformString(p types.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
