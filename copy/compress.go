package copy

import (
	"bufio"
	"bytes"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// errTransferAborted stops the goroutines of a blob chain once PutBlob has returned.
var errTransferAborted = errors.New("blob transfer aborted")

// decompressStream returns the uncompressed content of r, sniffing the compression from the
// first bytes (media types are not trusted for this), and the compression found.
func decompressStream(r io.Reader) (io.ReadCloser, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(zstdMagic))
	if err != nil && err != io.EOF {
		return nil, "", err
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", errors.Wrap(err, "reading gzip stream")
		}
		return gz, compressionGzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, "", errors.Wrap(err, "reading zstd stream")
		}
		return zr.IOReadCloser(), compressionZstd, nil
	default:
		return io.NopCloser(br), compressionNone, nil
	}
}

// maxParallelCompressors is how many layers at a time may use a multi-core gzip compressor;
// the others use one stream each (layers copied in parallel keep the cores busy anyway).
const maxParallelCompressors = 2

// gzipBlockSize and maxGzipBlocks bound one pgzip writer: each block in flight holds its
// input, its output and a compressor (about 2 MiB at 512 KiB blocks).
const (
	gzipBlockSize = 512 << 10
	maxGzipBlocks = 8
)

// Writers at the default level are reused across layers: a new one per layer allocates its
// buffers and compressors again, and a 60-layer copy turned that into 150 MiB of garbage.
var gzipWriters, pgzipWriters sync.Pool

// pooledWriter returns w to its pool when closed.
type pooledWriter struct {
	io.WriteCloser
	pool *sync.Pool
}

func (p pooledWriter) Close() error {
	err := p.WriteCloser.Close()
	if err != nil {
		// After a write error (the reader of the pipe went away: a failed or cancelled upload)
		// pgzip's Close returns at once and leaves the goroutine that writes its blocks
		// waiting forever, holding the writer's buffers; Reset ends it.
		if zw, ok := p.WriteCloser.(*pgzip.Writer); ok {
			zw.Reset(io.Discard)
		}
		return err
	}
	if p.pool != nil {
		p.pool.Put(p.WriteCloser)
	}
	return err
}

// compressWriter returns a writer compressing into w with algorithm alg at level (nil: default).
// With parallel, gzip uses pgzip, which compresses up to maxGzipBlocks blocks on several cores;
// otherwise one stream (klauspost gzip, about 1 MiB in all).
func compressWriter(w io.Writer, alg string, level *int, parallel bool) (io.WriteCloser, error) {
	switch alg {
	case compressionGzip:
		return gzipWriter(w, level, parallel)
	case compressionZstd:
		opts := []zstd.EOption{zstd.WithEncoderConcurrency(1)}
		if level != nil {
			opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(*level)))
		}
		return zstd.NewWriter(w, opts...)
	}
	return nil, errors.Errorf("unknown compression %q", alg)
}

func gzipWriter(w io.Writer, level *int, parallel bool) (io.WriteCloser, error) {
	blocks := min(runtime.GOMAXPROCS(0), maxGzipBlocks)
	if level == nil { // the pooled case
		if parallel {
			if zw, ok := pgzipWriters.Get().(*pgzip.Writer); ok {
				zw.Reset(w) // Reset restores pgzip's default concurrency
				return pooledWriter{zw, &pgzipWriters}, zw.SetConcurrency(gzipBlockSize, blocks)
			}
		} else if zw, ok := gzipWriters.Get().(*gzip.Writer); ok {
			zw.Reset(w)
			return pooledWriter{zw, &gzipWriters}, nil
		}
	}
	l, pool := gzip.DefaultCompression, (*sync.Pool)(nil)
	if level != nil {
		l = *level
	}
	if !parallel {
		if level == nil {
			pool = &gzipWriters
		}
		zw, err := gzip.NewWriterLevel(w, l)
		return pooledWriter{zw, pool}, err
	}
	if level == nil {
		pool = &pgzipWriters
	}
	zw, err := pgzip.NewWriterLevel(w, l)
	if err != nil {
		return nil, err
	}
	return pooledWriter{zw, pool}, zw.SetConcurrency(gzipBlockSize, blocks)
}

// compressPipe compresses r in a goroutine. The returned stop function aborts the goroutine
// if it is still running and waits for it, so r is no longer read after it returns.
func compressPipe(r io.Reader, alg string, level *int, parallel bool) (io.Reader, func(), error) {
	pr, pw := io.Pipe()
	cw, err := compressWriter(pw, alg, level, parallel)
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.Copy(cw, r)
		if cerr := cw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err) // nil: the reader sees io.EOF
	}()
	stop := func() {
		pr.CloseWithError(errTransferAborted)
		<-done
	}
	return pr, stop, nil
}

// eofReader runs a check when its stream reaches EOF and returns the check's error instead
// of io.EOF, so that a verification failure reaches the destination before it stores the blob.
// onErr, when set, may replace a read error.
type eofReader struct {
	r     io.Reader
	atEOF func() error
	onErr func(error) error
	err   error
}

func (e *eofReader) Read(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(b)
	if err == io.EOF {
		if cerr := e.atEOF(); cerr != nil {
			err = cerr
		}
	} else if err != nil && e.onErr != nil {
		err = e.onErr(err)
	}
	if err != nil {
		e.err = err
	}
	return n, err
}

// uncompressedDigest is the outcome of hashing a layer's uncompressed content.
type uncompressedDigest struct {
	layer    digest.Digest // the source layer, for error messages
	expected digest.Digest // from the config's diff_ids; "" when unknown
	actual   digest.Digest
	from     string // compression found in the stream
}

func (u *uncompressedDigest) check(size int64) error {
	if u.expected != "" && u.actual != u.expected {
		return errors.Wrapf(types.DigestMismatchError{Expected: string(u.expected), Actual: string(u.actual), ExpectedSize: -1, ActualSize: size},
			"layer %s: uncompressed content does not match the config's diff_id", u.layer)
	}
	return nil
}

// decompressVerified decompresses src inline and hashes the result. At EOF it drains src (so
// its own verification runs) and checks the diff ID.
func decompressVerified(src io.Reader, u *uncompressedDigest) (io.Reader, func(), error) {
	dr, from, err := decompressStream(src)
	if err != nil {
		return nil, nil, err
	}
	u.from = from
	h := digest.Canonical.Digester()
	var n int64
	counted := io.TeeReader(dr, writerFunc(func(b []byte) (int, error) { n += int64(len(b)); return h.Hash().Write(b) }))
	r := &eofReader{r: counted, atEOF: func() error {
		if _, err := io.Copy(io.Discard, src); err != nil {
			return err
		}
		u.actual = h.Digest()
		return u.check(n)
	}, onErr: func(err error) error {
		// A corrupted blob usually breaks decompression before its digest can be checked:
		// read the rest so the source's own error (e.g. the digest mismatch) is reported.
		if _, serr := io.Copy(io.Discard, src); serr != nil {
			return serr
		}
		return errors.Wrapf(err, "decompressing layer %s", u.layer)
	}}
	return r, func() { dr.Close() }, nil
}

// sideDigest passes src through unchanged while a goroutine decompresses a copy of it and
// hashes the uncompressed content; the result is checked at EOF.
func sideDigest(src io.Reader, u *uncompressedDigest) (io.Reader, func()) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var derr error
	var n int64
	go func() {
		defer close(done)
		dr, from, err := decompressStream(pr)
		if err == nil {
			h := digest.Canonical.Digester()
			n, err = io.Copy(h.Hash(), dr)
			dr.Close()
			u.actual, u.from = h.Digest(), from
		}
		derr = err
		_, _ = io.Copy(io.Discard, pr) // never block the main stream, also after a failure
	}()
	r := &eofReader{r: io.TeeReader(src, pw), atEOF: func() error {
		pw.Close()
		<-done
		if derr != nil {
			return errors.Wrapf(derr, "decompressing layer %s", u.layer)
		}
		return u.check(n)
	}}
	stop := func() {
		pw.CloseWithError(errTransferAborted)
		<-done
	}
	return r, stop
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// compressorName maps a plan compression to the BlobInfoCache name.
func compressorName(c string) string {
	if c == compressionNone {
		return types.UncompressedCompressorName
	}
	return c
}
