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

// TestCompressPipeStopLeavesNoGoroutines stops compressions whose reader went away mid-stream
// (a destination that failed or was cancelled while uploading a layer it had compressed) and
// checks that no compressor goroutine is left: pgzip's Close returns at once after a write
// error, leaving the goroutine that writes its blocks waiting, with the writer's buffers,
// for the rest of the process.
func TestCompressPipeStopLeavesNoGoroutines(t *testing.T) {
	payload := benchPayload()[:4<<20]
	for _, tc := range []struct {
		alg      string
		parallel bool
	}{{compressionGzip, true}, {compressionGzip, false}, {compressionZstd, false}} {
		for i := range 3 { // the second and third writers come from the pool
			r, stop, err := compressPipe(bytes.NewReader(payload), tc.alg, nil, tc.parallel)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, make([]byte, 4<<10)); err != nil {
				t.Fatalf("%s parallel=%v stream %d: %v", tc.alg, tc.parallel, i, err)
			}
			stop()
		}
		if stacks := waitForNoGoroutines("klauspost/"); stacks != "" {
			t.Errorf("%s parallel=%v: compressor goroutines left after stop:\n%s", tc.alg, tc.parallel, stacks)
		}
	}
}
