package copy

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/types"
)

// This file holds an in-memory ImageSource/ImageDestination pair for the engine tests:
// configurable Properties, rejection of given manifest types, failure injection and
// request counting.

type fakeTransport struct{ name string }

var _ types.ImageTransport = fakeTransport{}

func (t fakeTransport) Name() string { return t.name }
func (t fakeTransport) ParseReference(string) (types.ImageReference, error) {
	return nil, errors.New("not supported")
}

// memStore is committed image storage: blobs plus the top-level manifest and instances.
type memStore struct {
	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	manifests map[digest.Digest]storedManifest // instances by digest
	top       *storedManifest
}

type storedManifest struct {
	blob     []byte
	mimeType string
}

func newMemStore() *memStore {
	return &memStore{blobs: map[digest.Digest][]byte{}, manifests: map[digest.Digest]storedManifest{}}
}

func (s *memStore) putBlob(b []byte) digest.Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := digest.FromBytes(b)
	s.blobs[d] = b
	return d
}

func (s *memStore) blob(d digest.Digest) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[d]
	return b, ok
}

func (s *memStore) setTop(b []byte, mimeType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.top = &storedManifest{b, mimeType}
}

func (s *memStore) addInstance(b []byte, mimeType string) digest.Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := digest.FromBytes(b)
	s.manifests[d] = storedManifest{b, mimeType}
	return d
}

func (s *memStore) topManifest() (storedManifest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.top == nil {
		return storedManifest{}, false
	}
	return *s.top, true
}

// fakeRef names a memStore; sources read it and destinations commit into it.
type fakeRef struct {
	transport string
	name      string
	store     *memStore
	src       *fakeSourceConfig
	dest      *fakeDestConfig

	mu      sync.Mutex
	sources []*fakeSource
	dests   []*fakeDest
}

var _ types.ImageReference = (*fakeRef)(nil)

func newFakeRef(name string, store *memStore) *fakeRef {
	return &fakeRef{transport: "fake", name: name, store: store, src: &fakeSourceConfig{concurrent: true},
		dest: &fakeDestConfig{props: types.DestinationProperties{AcceptsIndex: true, ConcurrentBlobs: true}}}
}

func (r *fakeRef) Transport() types.ImageTransport  { return fakeTransport{r.transport} }
func (r *fakeRef) StringWithinTransport() string    { return r.name }
func (r *fakeRef) DockerReference() reference.Named { return nil }

func (r *fakeRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	s := &fakeSource{ref: r, cfg: r.src}
	r.mu.Lock()
	r.sources = append(r.sources, s)
	r.mu.Unlock()
	return s, nil
}

func (r *fakeRef) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	d := &fakeDest{ref: r, cfg: r.dest, staged: map[digest.Digest][]byte{}, instances: map[digest.Digest]storedManifest{}, putBlobs: map[digest.Digest]int{}}
	r.mu.Lock()
	r.dests = append(r.dests, d)
	r.mu.Unlock()
	if r.dest.hasManifest != nil {
		return &checkingDest{d}, nil
	}
	if r.dest.keeps != nil {
		return keepingDest{d}, nil
	}
	return d, nil
}

func (r *fakeRef) lastDest() *fakeDest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dests[len(r.dests)-1]
}

func (r *fakeRef) lastSource() *fakeSource {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sources[len(r.sources)-1]
}

// fakeSourceConfig injects source behaviour.
type fakeSourceConfig struct {
	concurrent bool
	corrupt    map[digest.Digest]bool // serve altered bytes
	// block serves half of this blob, then waits for the context, closing started first.
	block    digest.Digest
	started  chan struct{}
	readErr  map[digest.Digest]error // fail reading after half of the blob
	closeErr error
	// gate, when set, runs at the start of every GetBlob; an error fails the GetBlob.
	gate func(ctx context.Context, d digest.Digest) error
	// kept serves these blobs as streams resumed from kept data (types.ResumedReader) of the
	// given length, with the kept part altered when keptCorrupt; a GetBlob with NoResume
	// serves the plain blob.
	kept        map[digest.Digest]int64
	keptCorrupt bool
	// fileDir, when set, makes GetBlob serve each blob (altered when corrupt, with extra
	// appended) as an *os.File written there, like the local transports.
	fileDir string
	extra   map[digest.Digest][]byte
	// ignorePrefix serves the whole blob from the start when given the bytes the
	// destination kept, as a registry that ignores the Range request.
	ignorePrefix bool
}

type fakeSource struct {
	ref *fakeRef
	cfg *fakeSourceConfig

	mu        sync.Mutex
	getBlobs  []digest.Digest
	noResume  []bool // GetBlobOptions.NoResume of each GetBlob
	destKeeps []bool // GetBlobOptions.DestinationKeeps of each GetBlob
	prefixes  []int64
	closed    bool
}

var _ types.ImageSource = (*fakeSource)(nil)

func (s *fakeSource) Reference() types.ImageReference { return s.ref }
func (s *fakeSource) Properties() types.SourceProperties {
	return types.SourceProperties{ConcurrentBlobs: s.cfg.concurrent}
}

func (s *fakeSource) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	st := s.ref.store
	st.mu.Lock()
	defer st.mu.Unlock()
	if instance == nil {
		if st.top == nil {
			return nil, "", types.ErrManifestNotFound
		}
		return st.top.blob, st.top.mimeType, nil
	}
	m, ok := st.manifests[*instance]
	if !ok {
		return nil, "", errors.Wrapf(types.ErrManifestNotFound, "instance %s", *instance)
	}
	return m.blob, m.mimeType, nil
}

func (s *fakeSource) GetBlob(ctx context.Context, info types.BlobInfo, opts types.GetBlobOptions) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	s.getBlobs = append(s.getBlobs, info.Digest)
	s.noResume = append(s.noResume, opts.NoResume)
	s.destKeeps = append(s.destKeeps, opts.DestinationKeeps)
	s.prefixes = append(s.prefixes, opts.PrefixSize)
	s.mu.Unlock()
	if s.cfg.gate != nil {
		if err := s.cfg.gate(ctx, info.Digest); err != nil {
			return nil, -1, err
		}
	}
	b, ok := s.ref.store.blob(info.Digest)
	if !ok {
		return nil, -1, errors.Wrapf(types.ErrBlobNotFound, "blob %s", info.Digest)
	}
	if s.cfg.corrupt[info.Digest] {
		b = slices.Clone(b)
		b[len(b)/2] ^= 0xff
	}
	if s.cfg.fileDir != "" {
		p := filepath.Join(s.cfg.fileDir, info.Digest.Encoded())
		if err := os.WriteFile(p, append(slices.Clone(b), s.cfg.extra[info.Digest]...), 0o600); err != nil {
			return nil, -1, err
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, -1, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, -1, err
		}
		return f, fi.Size(), nil
	}
	if opts.Prefix != nil && !s.cfg.ignorePrefix { // stream what the destination kept, then the rest
		kept := make([]byte, opts.PrefixSize)
		if _, err := io.ReadFull(opts.Prefix, kept); err != nil {
			return nil, -1, err
		}
		return resumedStream{Reader: bytes.NewReader(append(kept, b[opts.PrefixSize:]...)), kept: opts.PrefixSize}, int64(len(b)), nil
	}
	switch n, ok := s.cfg.kept[info.Digest]; {
	case ok && !opts.NoResume:
		if s.cfg.keptCorrupt {
			b = slices.Clone(b)
			b[n/2] ^= 0xff
		}
		return resumedStream{Reader: bytes.NewReader(b), kept: n}, int64(len(b)), nil
	case info.Digest == s.cfg.block:
		return io.NopCloser(io.MultiReader(bytes.NewReader(b[:len(b)/2]), &blockingReader{ctx: ctx, started: s.cfg.started})), int64(len(b)), nil
	case s.cfg.readErr[info.Digest] != nil:
		return io.NopCloser(io.MultiReader(bytes.NewReader(b[:len(b)/2]), errReader{s.cfg.readErr[info.Digest]})), int64(len(b)), nil
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func (s *fakeSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.cfg.closeErr
}

type blockingReader struct {
	ctx     context.Context
	started chan struct{}
	once    sync.Once
}

func (b *blockingReader) Read([]byte) (int, error) {
	b.once.Do(func() {
		if b.started != nil {
			close(b.started)
		}
	})
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

// resumedStream is a blob stream whose first kept bytes came from data an earlier run kept.
type resumedStream struct {
	*bytes.Reader
	kept int64
}

func (r resumedStream) Close() error        { return nil }
func (r resumedStream) ResumedBytes() int64 { return r.kept }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// fakeDestConfig injects destination behaviour.
type fakeDestConfig struct {
	props  types.DestinationProperties
	reject map[string]bool // manifest types refused with ManifestTypeRejectedError
	// mounts makes TryReusingBlob report these digests as mounted from the given place.
	mounts map[digest.Digest]string
	// substitutes are offered by TryReusingBlob when substitution is allowed.
	substitutes map[digest.Digest]types.BlobInfo
	putBlobErr  error
	// breaks makes PutBlob of these blobs read the stream, then fail with a
	// types.StreamRetryError while PutBlobOptions.Attempt is below the given number.
	breaks map[digest.Digest]int
	// hasManifest, when set, makes the destination a types.ManifestChecker answering with it.
	hasManifest func(digest.Digest) (bool, error)
	// held makes PutBlob continue an upload an earlier run left of these blobs, holding the
	// given number of bytes (reported with PutBlobOptions.Resumed); with heldRefused, the
	// continued upload then fails with types.ErrResumeFailed. NoResume uploads afresh.
	held        map[digest.Digest]int64
	heldRefused bool
	// keeps makes the destination a types.PartialBlobKeeper keeping every blob, offering
	// these bytes as what an earlier run left of the blob (none when absent).
	keeps                  map[digest.Digest][]byte
	keptOpened, keptClosed atomic.Int32 // kept prefixes handed out, and closed
	// takesFiles makes PutBlob take the file of a types.FileBlob stream (as the registry
	// destination does over plain HTTP), read it and ask for its verification.
	takesFiles bool
	// instanceGate, when set, runs at the start of every PutManifest of an instance, outside
	// the fake's lock; an error fails that PutManifest.
	instanceGate func() error
	// reuseGate, when set, runs at the start of every TryReusingBlob, and onPut at the start
	// of every PutBlob; an error of reuseGate fails that TryReusingBlob.
	reuseGate func(info types.BlobInfo) error
	onPut     func(info types.BlobInfo)
}

// fakeDest stages blobs and manifests and copies them into the store on Commit.
type fakeDest struct {
	ref *fakeRef
	cfg *fakeDestConfig

	mu         sync.Mutex
	staged     map[digest.Digest][]byte
	instances  map[digest.Digest]storedManifest
	top        *storedManifest
	putBlobs   map[digest.Digest]int  // PutBlob calls by stored digest
	verified   map[digest.Digest]bool // PutBlobOptions.Verified by stored digest
	tookFiles  []digest.Digest        // blobs whose file PutBlob took
	fileErrs   []error                // what their verification returned
	putBytes   int64
	reuseOpts  []types.ReuseOptions
	putOpts    []types.PutBlobOptions
	manifests  []string        // MIME types of PutManifest calls, in order
	checked    []digest.Digest // HasManifest calls
	namedOnPut bool            // NameOnPut was called
	committed  bool
	closed     bool
	inFlight   int
	maxFlight  int
	// PutManifest calls in progress, and the most at once
	manifestFlight, maxManifestFlight int
}

var (
	_ types.ImageDestination = (*fakeDest)(nil)
	_ types.ManifestNamer    = (*fakeDest)(nil)
)

// NameOnPut records the call; the fake stores the manifest at Commit either way.
func (d *fakeDest) NameOnPut() {
	d.mu.Lock()
	d.namedOnPut = true
	d.mu.Unlock()
}

func (d *fakeDest) Reference() types.ImageReference         { return d.ref }
func (d *fakeDest) Properties() types.DestinationProperties { return d.cfg.props }

func (d *fakeDest) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	if gate := d.cfg.reuseGate; gate != nil {
		if err := gate(info); err != nil {
			return types.ReusedBlob{}, false, err
		}
	}
	d.mu.Lock()
	d.reuseOpts = append(d.reuseOpts, opts)
	d.mu.Unlock()
	// Like the real transports, honour the required compression: the original only when its
	// compression is the required one, a substitute only when its (sniffed) one is.
	if from, ok := d.cfg.mounts[info.Digest]; ok && opts.AcceptsOriginal() {
		return types.ReusedBlob{Info: info, MountedFrom: from}, true, nil
	}
	if sub, ok := d.cfg.substitutes[info.Digest]; ok && opts.CanSubstitute && opts.AcceptsCompression(d.sniffCompression(sub.Digest)) {
		return types.ReusedBlob{Info: sub}, true, nil
	}
	if b, ok := d.ref.store.blob(info.Digest); ok && opts.AcceptsOriginal() {
		return types.ReusedBlob{Info: types.BlobInfo{Digest: info.Digest, Size: int64(len(b))}}, true, nil
	}
	return types.ReusedBlob{}, false, nil
}

// sniffCompression returns the compressor name of a stored blob, as a cache would record it.
func (d *fakeDest) sniffCompression(dg digest.Digest) string {
	b, ok := d.ref.store.blob(dg)
	if !ok {
		return ""
	}
	switch {
	case bytes.HasPrefix(b, gzipMagic):
		return types.GzipCompressorName
	case bytes.HasPrefix(b, zstdMagic):
		return types.ZstdCompressorName
	}
	return types.UncompressedCompressorName
}

// enter counts a call in progress in *n, keeping in *most the most there were at once; the
// function it returns ends the call.
func (d *fakeDest) enter(n, most *int) func() {
	d.mu.Lock()
	*n++
	*most = max(*most, *n)
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		*n--
		d.mu.Unlock()
	}
}

func (d *fakeDest) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	if d.cfg.onPut != nil {
		d.cfg.onPut(info)
	}
	defer d.enter(&d.inFlight, &d.maxFlight)()
	d.mu.Lock()
	d.putOpts = append(d.putOpts, opts)
	d.mu.Unlock()
	var buf bytes.Buffer
	if fb, ok := r.(types.FileBlob); ok && d.cfg.takesFiles {
		if f, size, verified, ok := fb.TakeFile(); ok {
			return d.putFile(ctx, f, size, verified, info)
		}
	}
	if _, err := io.Copy(&buf, ctxio.Reader(ctx, r)); err != nil {
		return types.BlobInfo{}, err
	}
	if kept, ok := d.cfg.keeps[info.Digest]; ok && !opts.NoResume && opts.Resumed != nil {
		opts.Resumed(int64(len(kept))) // as a layout does: the kept bytes were not written again
	}
	if n, ok := d.cfg.held[info.Digest]; ok && !opts.NoResume {
		opts.Resumed(n)
		if d.cfg.heldRefused {
			return types.BlobInfo{}, errors.Wrap(types.ErrResumeFailed, "fake registry refused the digest of the continued upload")
		}
	}
	if d.cfg.putBlobErr != nil {
		return types.BlobInfo{}, d.cfg.putBlobErr
	}
	if n, ok := d.cfg.breaks[info.Digest]; ok && opts.Attempt < n {
		return types.BlobInfo{}, &types.StreamRetryError{Err: errors.Wrap(syscall.ECONNRESET, "fake upload broke off")}
	}
	got := digest.FromBytes(buf.Bytes())
	// Like real destinations, trust a verified stream: the engine alone must catch corruption.
	if info.Digest != "" && info.Digest != got && !opts.Verified {
		return types.BlobInfo{}, types.DigestMismatchError{Expected: info.Digest.String(), Actual: got.String(), ExpectedSize: info.Size, ActualSize: int64(buf.Len())}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.staged[got] = buf.Bytes()
	d.putBlobs[got]++
	d.putBytes += int64(buf.Len())
	if d.verified == nil {
		d.verified = map[digest.Digest]bool{}
	}
	d.verified[got] = opts.Verified
	return types.BlobInfo{Digest: got, Size: int64(buf.Len()), MediaType: info.MediaType}, nil
}

// putFile stores size bytes of a taken file once the engine verified it.
func (d *fakeDest) putFile(ctx context.Context, f *os.File, size int64, verified func() error, info types.BlobInfo) (types.BlobInfo, error) {
	b, err := io.ReadAll(io.LimitReader(f, size))
	verr := verified()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tookFiles = append(d.tookFiles, info.Digest)
	d.fileErrs = append(d.fileErrs, verr)
	switch {
	case verr != nil:
		return types.BlobInfo{}, verr
	case err != nil:
		return types.BlobInfo{}, err
	case d.cfg.putBlobErr != nil:
		return types.BlobInfo{}, d.cfg.putBlobErr
	}
	d.staged[info.Digest] = b
	d.putBlobs[info.Digest]++
	d.putBytes += int64(len(b))
	return types.BlobInfo{Digest: info.Digest, Size: size, MediaType: info.MediaType}, nil
}

func (d *fakeDest) PutManifest(ctx context.Context, b []byte, mimeType string, instance *digest.Digest) error {
	defer d.enter(&d.manifestFlight, &d.maxManifestFlight)()
	if gate := d.cfg.instanceGate; gate != nil && instance != nil {
		if err := gate(); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.manifests = append(d.manifests, mimeType)
	if d.cfg.reject[mimeType] {
		return types.ManifestTypeRejectedError{MIMEType: mimeType, Err: errors.New("unsupported by fake")}
	}
	if instance != nil {
		if digest.FromBytes(b) != *instance {
			return errors.Errorf("instance digest %s does not match manifest", *instance)
		}
		d.instances[*instance] = storedManifest{b, mimeType}
		return nil
	}
	d.top = &storedManifest{b, mimeType}
	return nil
}

func (d *fakeDest) Commit(ctx context.Context, opts types.CommitOptions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.top == nil {
		return errors.New("commit without a manifest")
	}
	st := d.ref.store
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, v := range d.staged {
		st.blobs[k] = v
	}
	for k, v := range d.instances {
		st.manifests[k] = v
	}
	top := *d.top
	st.top = &top
	d.committed = true
	return nil
}

func (d *fakeDest) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func (d *fakeDest) totalPutBlobs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.putBlobs {
		n += c
	}
	return n
}

// checkingDest is a fakeDest that also implements types.ManifestChecker.
type checkingDest struct{ *fakeDest }

var (
	_ types.ImageDestination = checkingDest{}
	_ types.ManifestChecker  = checkingDest{}
)

func (d checkingDest) HasManifest(ctx context.Context, dg digest.Digest) (bool, error) {
	d.mu.Lock()
	d.checked = append(d.checked, dg)
	d.mu.Unlock()
	return d.cfg.hasManifest(dg)
}

// keepingDest is a fakeDest that keeps what it receives (types.PartialBlobKeeper).
type keepingDest struct{ *fakeDest }

var _ types.PartialBlobKeeper = keepingDest{}

func (d keepingDest) KeepsPartialBlob(info types.BlobInfo) (bool, io.ReadCloser, int64) {
	b, ok := d.cfg.keeps[info.Digest]
	if !ok {
		return true, nil, 0
	}
	d.cfg.keptOpened.Add(1)
	return true, &countedCloser{Reader: bytes.NewReader(b), n: &d.cfg.keptClosed}, int64(len(b))
}

type countedCloser struct {
	io.Reader
	n *atomic.Int32
}

func (c *countedCloser) Close() error { c.n.Add(1); return nil }
