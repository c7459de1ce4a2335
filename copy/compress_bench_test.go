package copy

import (
	"io"
	"math/rand"
	"testing"
)

// benchPayload is 16 MiB of half-compressible data: random bytes interleaved with runs.
func benchPayload() []byte {
	rng := rand.New(rand.NewSource(1))
	p := make([]byte, 16<<20)
	for i := 0; i < len(p); i += 4096 {
		if (i/4096)%2 == 0 {
			rng.Read(p[i : i+4096])
		}
	}
	return p
}

type sliceReader struct {
	b []byte
	i int
}

func (s *sliceReader) Read(p []byte) (int, error) {
	if s.i >= len(s.b) {
		return 0, io.EOF
	}
	n := copy(p, s.b[s.i:])
	s.i += n
	return n, nil
}

// BenchmarkCompress measures the compressors the engine uses for gzip (pgzip) and zstd.
func BenchmarkCompress(b *testing.B) {
	payload := benchPayload()
	for _, alg := range []string{compressionGzip, compressionZstd} {
		b.Run(alg, func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			for range b.N {
				r, stop, err := compressPipe(&sliceReader{b: payload}, alg, nil, true)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				stop()
			}
		})
	}
}

// BenchmarkDecompress measures decompressStream for gzip and zstd input.
func BenchmarkDecompress(b *testing.B) {
	payload := benchPayload()
	for _, alg := range []string{compressionGzip, compressionZstd} {
		r, stop, err := compressPipe(&sliceReader{b: payload}, alg, nil, true)
		if err != nil {
			b.Fatal(err)
		}
		compressed, err := io.ReadAll(r)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			for range b.N {
				rc, _, err := decompressStream(&sliceReader{b: compressed})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}
