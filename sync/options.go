package sync

import (
	"github.com/opencontainers/go-digest"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

// Defaults of Options.
const (
	// DefaultImageParallel is how many images are copied at once.
	DefaultImageParallel = 4
	// DefaultRateLimitMin is the remaining pull quota below which manifest pulls pause.
	DefaultRateLimitMin = 10
	// DefaultRequestsPerRegistry bounds the requests awaiting an answer from one registry.
	DefaultRequestsPerRegistry = 16
)

// Options configure Plan and Run.
type Options struct {
	// Transports parses the source and destination names.
	Transports types.TransportList
	// Sources are the selections of images to sync.
	Sources []Source
	// Destination is the store every image goes to: "docker://HOST[/PREFIX]", "oci:DIR",
	// "oci-archive:FILE", "docker-archive:FILE" or "dir:DIR" (the transport must implement
	// types.StoreTransport).
	Destination string
	// Copy holds the options of each image's copy: the source and destination contexts,
	// format, multi-platform choice, compression, layers per image, the blob-info cache (one
	// for the whole sync; nil means a new in-memory one). Progress, Budget and BudgetScope are
	// set by the sync.
	Copy copier.Options
	// Scoped names destination repositories after the source registry and whole path, as
	// skopeo sync --scoped does; otherwise only the last path element is kept.
	Scoped bool
	// AppendSuffix is appended to every destination tag (skopeo sync --append-suffix).
	AppendSuffix string
	// ImageParallel is how many images are copied at once; 0 means DefaultImageParallel.
	ImageParallel int
	// Transfers bounds the blobs transferred at once over all images; 0 means
	// Copy.ImageParallelCopies, or copy.DefaultParallelCopies.
	Transfers int
	// Shard is this process's share of the sync; the zero value is all of it.
	Shard Shard
	// Prune plans (and Run performs) the deletion of tags in the mapped destination
	// repositories that the source selection no longer has.
	Prune bool
	// FailFast stops at the first failure instead of going on with the other images.
	FailFast bool
	// RateLimitMin pauses manifest pulls from a registry whose rate-limit headers say fewer
	// pulls than this remain (Docker Hub's ratelimit-remaining); 0 never pauses.
	RateLimitMin int
	// RequestsPerRegistry bounds the requests awaiting an answer from one registry, over all
	// images; 0 means no bound.
	RequestsPerRegistry int
	// Progress receives events from Run (from several goroutines; it must return quickly),
	// never after Run returned.
	Progress func(Event)
}

// Source is one selection of images.
type Source struct {
	// Name is a transport-qualified image or store: "docker://HOST/REPO" (every tag, or the
	// tags Tags and Filters select), "docker://HOST/REPO:TAG", "oci:DIR" (every image in the
	// layout), an archive, ...
	Name string
	// Tags are literal tags or digests ("sha256:…") of Name; each must exist at the source.
	Tags []string
	// Filters select among the images Name lists, by tag; an image any filter selects is
	// synced. Without Tags and Filters, every listed image is.
	Filters []TagFilter
	// Platforms, when set, replaces Copy's multi-platform choice for this source.
	Platforms *Platforms
	// Destination, when set, names the destination repository of this source's images.
	Destination *RepoTemplate
	// SystemContext, when set, replaces Copy.SourceCtx for this source (credentials, TLS).
	SystemContext *types.SystemContext
	// Origin says where the source was defined (e.g. "sync.yaml:12"), for messages.
	Origin string
}

// Platforms is a source's choice among the images of a multi-platform index.
type Platforms struct {
	MultiArch copier.MultiArch
	List      []types.Platform
}

// Action is what a plan does, or a run did, with an image.
type Action string

// Plan actions, then the actions a run reports.
const (
	ActionCopy     Action = "copy"       // the destination lacks the image or has another one
	ActionUpToDate Action = "up-to-date" // the destination has it already: nothing to do
	ActionSkip     Action = "skip"       // not synced, for the Reason given
	ActionFail     Action = "fail"       // the image cannot be synced (a missing literal tag, …)
	ActionPrune    Action = "prune"      // a destination tag the selection no longer has

	ActionCopied  Action = "copied"
	ActionSkipped Action = "skipped"
	ActionFailed  Action = "failed"
	ActionPruned  Action = "pruned"
)

// Item is one image of a plan (or one tag to prune).
type Item struct {
	// Source is the source image (types.ImageName); "" for a prune item.
	Source string
	// Destination is the destination image (types.ImageName); for a source that could not be
	// listed, the source's name.
	Destination string
	// Name is the image's name in the destination store: "REPO:TAG" or "REPO@DIGEST".
	Name string
	// SourceDigest is the source's manifest digest when known without reading the manifest.
	SourceDigest digest.Digest
	// DestinationDigest is the digest the destination has under Name ("" when none).
	DestinationDigest digest.Digest
	Action            Action
	Reason            string
	// Err is the failure of a fail item.
	Err error

	src, dest types.ImageReference
	source    *Source
	literal   bool // selected by a literal tag or digest
	recheck   bool // up to date, but copied to check every blob (copy.Options.ForceRecursive)
}
