package layout

import (
	"context"
	"path/filepath"
	"slices"
	"sync"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/internal/fileid"
)

// Group commit. Every commit into a layout takes its lock and replaces index.json, an fsync
// of the file and one of the directory: a sync of n tags into one layout wrote (and encoded)
// an index of up to n entries n times, one commit after the other (3,001 tags of one image:
// 85 s). Commits that this process makes into one layout while another is writing wait in
// a queue instead; the next to write takes the layout lock once for all of them that are
// waiting then, publishes each one's blobs, syncs the directories once, and writes index.json
// once with all their entries. Each commit still returns only when its entry is durable, and
// one that fails (a missing blob) leaves the others' entries in.

// commitRequest is one destination's commit waiting in a commitQueue.
type commitRequest struct {
	d    *destination
	err  error         // set before done is closed
	done chan struct{} // closed once the batch holding the request was written (or failed)
	lead chan struct{} // receives once when the request is to write the next batch
	// leads is set when lead was sent; pending and leads are guarded by commitQueues.mu.
	leads bool
}

// commitQueue holds the commits waiting to be written into one layout by this process.
type commitQueue struct {
	key     string
	pending []*commitRequest // in arrival order; the leader's own request among them
	leading bool             // a request leads, or was asked to
}

// commitQueues holds the queues of the layouts being committed into, by absolute path. Two
// paths of one directory get two queues, which is slower, not unsafe: every batch holds the
// layout lock.
var commitQueues = struct {
	mu     sync.Mutex
	queues map[string]*commitQueue
}{queues: map[string]*commitQueue{}}

// commitTogether commits d, holding d.mu: it queues d's commit and either leads the batch
// that writes it (when no other commit into the layout is being written) or waits for the
// request that leads to write it. A commit that ctx ends while it waits to be taken into a
// batch is dropped and gets no entry; once taken, it is written (as a lone commit holding
// the lock was before), and its result returned.
func commitTogether(ctx context.Context, d *destination) error {
	key := d.scope.Opaque
	if key == "" {
		key = d.ref.path
	}
	r := &commitRequest{d: d, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	commitQueues.mu.Lock()
	q := commitQueues.queues[key]
	if q == nil {
		q = &commitQueue{key: key}
		commitQueues.queues[key] = q
	}
	q.pending = append(q.pending, r)
	if !q.leading {
		q.leading, r.leads = true, true
		r.lead <- struct{}{}
	}
	commitQueues.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-r.lead:
		return q.writeBatch(ctx, r)
	case <-ctx.Done():
	}
	commitQueues.mu.Lock()
	if i := slices.Index(q.pending, r); i >= 0 {
		q.pending = slices.Delete(q.pending, i, i+1)
		if r.leads {
			q.handOff()
		}
		commitQueues.mu.Unlock()
		return errors.Wrap(ctx.Err(), "waiting to write index.json")
	}
	commitQueues.mu.Unlock()
	<-r.done // taken into a batch being written
	return r.err
}

// handOff asks the first waiting request to lead the next batch, or marks the queue idle
// (and forgets it) when none waits; commitQueues.mu is held.
func (q *commitQueue) handOff() {
	if len(q.pending) == 0 {
		q.leading = false
		delete(commitQueues.queues, q.key)
		return
	}
	next := q.pending[0]
	next.leads = true
	next.lead <- struct{}{}
}

// writeBatch takes the layout lock for leader (its ctx bounds the wait for another process's
// lock), takes every request waiting then, leader's included, writes them, and hands the
// lead on.
func (q *commitQueue) writeBatch(ctx context.Context, leader *commitRequest) error {
	unlock, err := lockLayout(ctx, leader.d.root, leader.d.ref.path)
	commitQueues.mu.Lock()
	if err != nil {
		if i := slices.Index(q.pending, leader); i >= 0 {
			q.pending = slices.Delete(q.pending, i, i+1)
		}
		q.handOff()
		commitQueues.mu.Unlock()
		return err
	}
	batch := q.pending
	q.pending = nil
	commitQueues.mu.Unlock()
	writeCommits(leader.d, batch)
	unlock()
	commitQueues.mu.Lock()
	q.handOff()
	commitQueues.mu.Unlock()
	for _, r := range batch {
		close(r.done)
	}
	return leader.err
}

// writeCommits writes the commits of batch into the layout of leader, whose lock is held,
// setting each request's err: it publishes every image's blobs, syncs the blob directories
// once, checks each image complete and writes index.json once with the entries of those that
// are. The fsyncs are those of the first durable destination in the batch (none with
// --fsync=false).
func writeCommits(leader *destination, batch []*commitRequest) {
	syncer := leader.syncer
	for _, r := range batch {
		if r.d.syncer.Durable() {
			syncer = r.d.syncer
			break
		}
	}
	fail := func(rs []*commitRequest, err error) {
		for _, r := range rs {
			r.err = err
		}
	}
	if err := leader.writeLayoutFile(syncer); err != nil {
		fail(batch, err)
		return
	}
	published, err := publishAll(syncer, leader.ref.path, batch)
	if err != nil {
		fail(published, err)
		return
	}
	idx, added, err := indexWithEntries(leader, published)
	if err != nil {
		fail(published, err)
		return
	}
	if len(added) == 0 {
		return
	}
	b, err := encodeIndex(idx.idx, idx.entries)
	if err != nil {
		fail(added, err)
		return
	}
	// Kept before the file is replaced, so that the other images' readers of the new file
	// (readIndexShared) find it parsed, as those of the versions before (fileid.Last).
	lastIndex.Put(leader.ref.path, fileid.ID{}, b, idx.idx)
	keepEncoding(idx)
	err = syncer.WriteFile(filepath.Join(leader.ref.path, IndexFile), b, 0o644)
	if err == nil {
		err = syncer.SyncDir(leader.ref.path) // index.json's new name
	}
	fail(added, err)
}

// publishAll publishes the blobs of every request of batch and syncs the directories that got
// new names once; it returns the requests whose blobs are all published (the others have
// their error set), and an error for them all when the directories could not be synced.
func publishAll(syncer *atomicfile.Syncer, root string, batch []*commitRequest) ([]*commitRequest, error) {
	dirs := map[string]bool{}
	newBlobsDir := false
	var published []*commitRequest
	for _, r := range batch {
		newDirs, created, err := r.d.publishBlobs()
		if err != nil {
			r.err = err
			continue
		}
		for dir := range newDirs {
			dirs[dir] = true
		}
		newBlobsDir = newBlobsDir || created
		published = append(published, r)
	}
	if len(dirs) == 0 {
		return published, nil
	}
	return published, syncBlobDirs(syncer, root, dirs, newBlobsDir)
}

// indexWithEntries returns the layout's index (read through readIndexShared) with an entry
// for each image of published that is complete; the requests of the others get their
// error. added lists the requests whose entries are in.
func indexWithEntries(leader *destination, published []*commitRequest) (_ encodedIndex, added []*commitRequest, _ error) {
	idx := EmptyIndex()
	if _, err := leader.root.Stat(IndexFile); err == nil {
		if idx, err = readIndexShared(leader.root.FS(), leader.ref.path); err != nil {
			return encodedIndex{}, nil, err
		}
	}
	u := newIndexUpdate(encodingOf(idx))
	for _, r := range published {
		d := r.d
		if r.err = d.checkComplete(*d.top); r.err != nil {
			continue
		}
		related := d.relatedToCommit()
		if len(related) == 0 {
			u.add(*d.top, d.ref.name)
			added = append(added, r)
			continue
		}
		// Rare: referrers and digest tags need the index as it is now.
		cur := u.result()
		next, err := d.commitRelated(UpdateIndex(cur.idx, *d.top, d.ref.name), related)
		if r.err = err; err != nil {
			u = newIndexUpdate(cur)
			continue
		}
		u = newIndexUpdate(encodedIndex{idx: next})
		added = append(added, r)
	}
	return u.result(), added, nil
}
