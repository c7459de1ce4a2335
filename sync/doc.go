// Package sync mirrors sets of images: every tag of a registry repository (filtered by
// literal tags, regular expressions and semver ranges), every image of an OCI layout or
// archive, or the sources a skopeo-sync-style YAML file lists, into one destination store (a
// registry or a prefix on it, an OCI layout, an archive, a dir: tree). It is what
// `imgcopy sync` runs. Importers alias it (`syncer`), because the package name shadows the
// standard library's.
//
// # Getting started
//
// Give Options the transports, the sources and the destination store, plan, then run the
// plan; a second run of the same options finds everything up to date:
//
//	opts := syncer.Options{
//		Transports:  alltransports.List(),
//		Sources:     []syncer.Source{{Name: "docker://quay.io/team/app"}},
//		Destination: "docker://registry.example/mirror",
//	}
//	plan, err := syncer.NewPlan(ctx, opts)
//	rep, err := plan.Run(ctx)
//	if err := rep.Err(); err != nil { ... } // some images failed: rep.Failures() lists them
//
// A Source names a registry repository (every tag, or those Tags and Filters select), one
// image, or a local store (every image in it); ReadConfig reads sources from YAML in skopeo
// sync's format with imgcopy's extensions. Options.Copy holds what each image's copy uses
// (credentials and TLS per side, formats, platforms, compression, the blob-info cache, and
// Referrers / DigestTags to carry signatures and attestations along); Shard, Prune, FailFast,
// ImageParallel and the rate-limit fields are the sync's own. The examples show a whole
// sync between two local stores and a YAML configuration.
//
// # Plan, then run
//
// NewPlan lists the sources, names each image in the destination (skopeo's naming: the last
// element of the repository path and the tag, the whole path with Scoped, or a per-source
// RepoTemplate), keeps this process's share (Options.Shard), and resolves both digests with
// HEAD requests. An image whose source digest the destination already has under that name,
// or the digest a previous copy wrote for it (remembered in the blob-info cache when the copy
// changed it, e.g. a platform subset: types.ManifestMappingCache), is up to date and costs no
// manifest GET at the source. The plan's Items say, for each image, copy, up-to-date, skip or
// fail and why; Plan.Report renders them as a dry run. A missing literal tag, a source that
// cannot be listed or two sources claiming one name fail those images only.
//
// Plan.Run copies the images to copy, ImageParallel at a time, sharing one blob-transfer
// budget (copy.Budget) and one blob-info cache, so that a blob several images need crosses
// the network once per destination; it keeps going after a failure unless FailFast, deletes
// the tags to prune last, and returns a Report with every image's action, digest, bytes,
// time and, for a failure, the error and its class (types.Classify). Each image's copy
// commits only when complete, so an interrupted run leaves every image complete or absent,
// and the next run copies what is missing. Options.Progress receives per-image and per-blob
// events.
//
// # Referrers and digest tags
//
// With Copy.Referrers, the referrers indexes a registry without the referrers API keeps
// under sha256-<hex> tags are not planned as images of their own; with Copy.DigestTags,
// neither are cosign's sha256-<hex>.sig, .att and .sbom: each image's copy carries them. For
// an up-to-date image the plan compares the referrers and digest tags both ends list
// (copy.RelatedMissing: listings and HEADs, no manifest GET of the image at the source) and
// copies the image again when the destination lacks one; that copy finds the image present
// and writes only what is missing.
//
// # Transports
//
// The package names no transport: names are parsed with the types.TransportList given in
// Options, and the transports' optional interfaces say what each end can do: types.ImageLister
// and types.ManifestDigester (listing, HEAD-first), types.StoreTransport and
// types.StoreWriterOpener (the destination store; archives are written in one session),
// types.TagDeleter (Prune), types.RequestLimiter (one request budget per registry) and
// types.LazySourceOpener (comparing referrers without reading the image).
//
// # Stability
//
// NewPlan, Plan.Run, Plan.Report, Options, Source, TagFilter, Platforms, Shard, RepoTemplate,
// ReadConfig, Report, Result, Event and the Action and EventKind values are stable: structs
// may gain fields whose zero value keeps today's behaviour, and new actions and event kinds
// may be added. The text of reasons and errors is for people and may change.
package sync
