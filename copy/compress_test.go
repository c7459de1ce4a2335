package copy

import (
	"bytes"
	"io"
	"testing"
)

// TestCompressPipeReusesWriters compresses several streams in a row with each gzip writer
// kind, so that writers come back from their pools, and checks every result decompresses to
// its input.
func TestCompressPipeReusesWriters(t *testing.T) {
	payload := benchPayload()[:3<<20]
	for _, parallel := range []bool{false, true} {
		for i := range 3 {
			in := payload[i<<20:]
			r, stop, err := compressPipe(bytes.NewReader(in), compressionGzip, nil, parallel)
			if err != nil {
				t.Fatal(err)
			}
			compressed, err := io.ReadAll(r)
			stop()
			if err != nil {
				t.Fatal(err)
			}
			rc, alg, err := decompressStream(bytes.NewReader(compressed))
			if err != nil || alg != compressionGzip {
				t.Fatalf("parallel=%v stream %d: %v, %q", parallel, i, err, alg)
			}
			out, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("parallel=%v stream %d: round trip differs (%d bytes, %v)", parallel, i, len(out), err)
			}
		}
	}
}
