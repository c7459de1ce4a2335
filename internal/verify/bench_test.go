package verify

import (
	"io"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// zeroReader yields n zero bytes without allocating them up front.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// BenchmarkReader measures the verifying reader's throughput (sha256 bound).
func BenchmarkReader(b *testing.B) {
	const size = 64 << 20
	d := digest.Canonical.Digester()
	if _, err := io.Copy(d.Hash(), &zeroReader{n: size}); err != nil {
		b.Fatal(err)
	}
	want := d.Digest()
	buf := make([]byte, 256<<10)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		vr, err := NewReader(&zeroReader{n: size}, want, size)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, vr, buf); err != nil {
			b.Fatal(err)
		}
	}
}
