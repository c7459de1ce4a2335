package sync

import (
	"context"
	"fmt"
	gosync "sync"
	"time"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

// Run carries out the plan: it copies the images to copy, ImageParallel at a time with one
// shared transfer budget and blob-info cache, then deletes the tags to prune; the other items
// are reported as planned. Failures of single images are in the report (Report.Err); the
// error return is for the run as a whole: a destination store that cannot be opened or
// committed, or an interruption (then the report says what was done before it).
//
// Each image's copy commits only when complete, so an interrupted run leaves every
// destination image complete or untouched, and the next run copies what is missing.
func (p *Plan) Run(ctx context.Context) (*Report, error) {
	start := time.Now()
	r := &runner{p: p, results: make([]Result, len(p.Items)), total: len(p.Items), turns: map[string]chan struct{}{}, landed: map[string]bool{}}
	r.budget = copier.NewBudget(p.transfers())
	if opener, ok := p.store.(types.StoreWriterOpener); ok {
		w, err := opener.NewStoreWriter(ctx, p.opts.Copy.DestinationCtx)
		if err != nil {
			return nil, errors.Wrapf(err, "opening %s", p.Destination)
		}
		defer w.Close()
		r.writer = w
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel
	if p.opts.FailFast && p.Counts()[ActionFail] > 0 {
		r.stopped = "another image could not be planned (--fail-fast)"
	}
	r.reportPlanned()
	r.copyAll(runCtx)
	commitErr := r.commit(ctx)
	r.pruneAll(runCtx)
	if f, ok := p.opts.Copy.BlobInfoCache.(types.BlobInfoCacheFlusher); ok {
		_ = f.Flush() // what the copies (Options.DeferCacheFlush) and the commits recorded; a failure costs speed only
	}
	rep := &Report{Destination: p.Destination, Shard: p.Shard.String(), Started: start, Images: r.results}
	rep.Seconds = time.Since(start).Seconds()
	rep.count()
	if err := ctx.Err(); err != nil {
		return rep, errors.Wrap(err, "sync interrupted")
	}
	return rep, commitErr
}

func (p *Plan) transfers() int {
	switch {
	case p.opts.Transfers > 0:
		return p.opts.Transfers
	case p.opts.Copy.ImageParallelCopies > 0:
		return p.opts.Copy.ImageParallelCopies
	}
	return copier.DefaultParallelCopies
}

// runner is the state of one Run.
type runner struct {
	p       *Plan
	budget  *copier.Budget
	writer  types.StoreWriter
	cancel  context.CancelFunc
	results []Result // one per plan item

	mu          gosync.Mutex
	total, done int
	bytesCopied int64
	stopped     string // why no further image starts, "" while going on
	// turns holds, per destination repository and source manifest, the copy in progress (see
	// takeTurn); closed when it ends. landed holds those of them copied successfully.
	turns  map[string]chan struct{}
	landed map[string]bool
}

// reportPlanned reports the items that need no work now: up to date, skipped, failed at
// planning.
func (r *runner) reportPlanned() {
	for i, it := range r.p.Items {
		res := planResult(it)
		switch it.Action {
		case ActionUpToDate:
		case ActionSkip:
			res.Action = ActionSkipped
		case ActionFail:
			res.Action = ActionFailed
		default:
			continue
		}
		r.finish(i, res)
	}
}

// finish records the result of item i and reports it.
func (r *runner) finish(i int, res Result) {
	r.mu.Lock()
	r.results[i] = res
	r.done++
	r.bytesCopied += res.BytesCopied
	ev := Event{Kind: EventImageDone, Source: res.Source, Destination: res.Destination, Result: &res, Done: r.done, Total: r.total, BytesCopied: r.bytesCopied}
	r.mu.Unlock()
	r.emit(ev)
}

func (r *runner) emit(ev Event) {
	if r.p.opts.Progress != nil {
		ev.Total = r.total
		r.p.opts.Progress(ev)
	}
}

// stop makes the run start no further image, for reason.
func (r *runner) stop(reason string) {
	r.mu.Lock()
	if r.stopped == "" {
		r.stopped = reason
	}
	r.mu.Unlock()
	r.cancel()
}

func (r *runner) stopReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// copyAll copies the images to copy, ImageParallel at a time.
func (r *runner) copyAll(ctx context.Context) {
	work := make(chan int)
	var wg gosync.WaitGroup
	for range r.p.opts.ImageParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r.finish(i, r.copyItem(ctx, r.p.Items[i]))
			}
		}()
	}
	for i, it := range r.p.Items {
		if it.Action == ActionCopy {
			work <- i
		}
	}
	close(work)
	wg.Wait()
}

// copyItem copies one image and returns its result.
func (r *runner) copyItem(ctx context.Context, it *Item) Result {
	res := Result{Source: it.Source, Destination: it.Destination, SourceDigest: it.SourceDigest, Action: ActionSkipped}
	if reason := r.stopReason(); reason != "" || ctx.Err() != nil {
		res.Reason = notStarted(reason)
		return res
	}
	release, ok := r.takeTurn(ctx, it)
	if !ok {
		res.Reason = notStarted(r.stopReason())
		return res
	}
	defer func() { release(res.Action == ActionCopied || res.Action == ActionUpToDate) }()
	dest, err := r.destination(it)
	if err != nil {
		res.Action = ActionFailed
		res.setErr(err)
		return res
	}
	opts := r.p.copyOptions(it)
	opts.Budget, opts.BudgetScope = r.budget, r.p.Destination
	tally := &blobTally{}
	opts.Progress = func(ev copier.ProgressEvent) {
		tally.add(ev)
		r.emit(Event{Kind: EventBlob, Source: it.Source, Destination: it.Destination, Blob: &ev})
	}
	r.emit(Event{Kind: EventImageStarted, Source: it.Source, Destination: it.Destination})
	start := time.Now()
	cr, err := copier.Image(ctx, dest, it.src, &opts)
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		tally.into(&res) // what the copy moved before it failed or was stopped
		if reason := r.stopReason(); reason != "" && errors.Is(err, context.Canceled) {
			res.Reason = "stopped: " + reason
			return res
		}
		if errors.Is(err, types.ErrNotContainerImage) {
			// A mirror of a repository into a docker-archive meets cosign's .sig tags and
			// other artifacts: the archive cannot hold them, which is no failure of the sync.
			res.Reason = "an artifact, not a container image, which " + r.p.Destination + " cannot hold"
			return res
		}
		res.Action = ActionFailed
		res.setErr(err)
		if r.p.opts.FailFast {
			r.stop(it.Destination + " failed (--fail-fast)")
		}
		return res
	}
	r.copied(it, cr, &res, tally.mounted())
	return res
}

// takeTurn waits while another image with the same source manifest is being copied into the
// same destination repository (two tags of one image). Side by side, both copies would push
// the same manifests at once, which CNCF distribution 2.x may refuse ("blob unknown": it
// rewrites a manifest's link in the repository on every push); one after the other, the
// second finds the image there and writes only its tag. In a local store (a layout, an
// archive, a dir: tree) only the first copy goes alone, so that the others find its blobs:
// once one has succeeded, the others only write their names, which the store takes side by
// side (a layout writes them into index.json together: 3,000 tags of one image took one
// index.json write each, one after the other). It returns false when ctx ends first; release
// takes whether the copy succeeded.
func (r *runner) takeTurn(ctx context.Context, it *Item) (release func(ok bool), _ bool) {
	if it.SourceDigest == "" {
		return func(bool) {}, true
	}
	key := repository(it.Name) + "@" + it.SourceDigest.String()
	_, localStore := r.p.store.(types.ImageLister) // registries list no store
	for {
		r.mu.Lock()
		if localStore && r.landed[key] {
			r.mu.Unlock()
			return func(bool) {}, true
		}
		busy, taken := r.turns[key]
		if !taken {
			mine := make(chan struct{})
			r.turns[key] = mine
			r.mu.Unlock()
			return func(ok bool) {
				r.mu.Lock()
				delete(r.turns, key)
				if ok {
					r.landed[key] = true
				}
				r.mu.Unlock()
				close(mine)
			}, true
		}
		r.mu.Unlock()
		if r.p.onTurnWait != nil {
			r.p.onTurnWait(it)
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func notStarted(reason string) string {
	if reason == "" {
		return "not started: interrupted"
	}
	return "not started: " + reason
}

// destination returns the reference to copy it to: in the store, or in the store writer's
// session for stores written as a whole.
func (r *runner) destination(it *Item) (types.ImageReference, error) {
	if r.writer == nil {
		return it.dest, nil
	}
	return r.writer.ImageReference(it.Name)
}

// copied fills in a successful copy's result and remembers, when the copy changed the
// manifest, what it wrote for the source manifest, so that the next plan sees it up to date.
// mounted counts the blobs the copy mounted from another repository (reused, but missing
// from the image's own).
func (r *runner) copied(it *Item, cr *copier.Result, res *Result, mounted int) {
	res.Action = ActionCopied
	res.Digest, res.SourceDigest = cr.ManifestDigest, cr.SourceDigest
	res.BlobsCopied, res.BlobsReused = cr.BlobsCopied, cr.BlobsReused
	res.BytesCopied, res.BytesReused, res.BytesResumed = cr.BytesCopied, cr.BytesReused, cr.BytesResumed
	for _, rel := range cr.Related {
		if !rel.Present {
			res.RelatedCopied++
		}
	}
	res.LeftOut = cr.LeftOut
	switch {
	case it.recheck && res.BlobsCopied+mounted == 0 && res.RelatedCopied == 0 && cr.ManifestDigest == it.DestinationDigest:
		res.Action, res.Reason = ActionUpToDate, "every blob checked, none missing; its manifests written again (--force-recursive)"
	case it.recheck && res.BlobsCopied+mounted > 0:
		res.Reason = fmt.Sprintf("repaired (--force-recursive): the destination lacked %s", plural(res.BlobsCopied+mounted, "blob"))
	case cr.AlreadyPresent && res.RelatedCopied > 0:
		res.Reason = "the destination had the image; only referrers and digest tags were written"
	case cr.AlreadyPresent:
		res.Reason = "the destination had the manifest; only the name was written"
	}
	if cr.SourceDigest != "" && cr.SourceDigest != cr.ManifestDigest {
		if mc, ok := r.p.opts.Copy.BlobInfoCache.(types.ManifestMappingCache); ok {
			mc.RecordManifestMapping(cr.SourceDigest, r.p.variant(it), cr.ManifestDigest)
		}
	}
	logrus.WithFields(logrus.Fields{"source": it.Source, "destination": it.Destination, "digest": cr.ManifestDigest}).Debug("image synced")
}

// commit makes the images copied into a store writer's session visible; on failure they
// are failures too.
func (r *runner) commit(ctx context.Context) error {
	if r.writer == nil {
		return nil
	}
	var copied []int
	for i, res := range r.results {
		if res.Action == ActionCopied {
			copied = append(copied, i)
		}
	}
	if len(copied) == 0 {
		return nil
	}
	err := r.writer.Commit(ctx)
	if err == nil {
		return nil
	}
	err = errors.Wrapf(err, "committing %s", r.p.Destination)
	for _, i := range copied {
		r.results[i].Action, r.results[i].Reason = ActionFailed, ""
		r.results[i].setErr(err)
	}
	return err
}

// pruneAll deletes the tags to prune, one at a time (deletes are rare and cheap).
func (r *runner) pruneAll(ctx context.Context) {
	for i, it := range r.p.Items {
		if it.Action != ActionPrune {
			continue
		}
		res := planResult(it)
		res.Action = ActionSkipped
		if reason := r.stopReason(); reason != "" || ctx.Err() != nil {
			res.Reason = "not pruned: " + notStarted(reason)
			r.finish(i, res)
			continue
		}
		start := time.Now()
		if err := r.p.prune(ctx, it); err != nil {
			res.Action = ActionFailed
			res.setErr(err)
		} else {
			res.Action = ActionPruned
		}
		res.Seconds = time.Since(start).Seconds()
		r.finish(i, res)
	}
}
