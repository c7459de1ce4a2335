package main

import (
	"bytes"
	"encoding/json"
	"testing"

	syncer "github.com/imgcopy/imgcopy/sync"
)

// TestJSONImageDoneNamesTheImage checks that an image-done line of --progress json carries
// the image's report entry whole: which image it is, its bytes and its time.
func TestJSONImageDoneNamesTheImage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	j := &jsonSync{enc: json.NewEncoder(&out), blobs: &jsonOutput{enc: json.NewEncoder(&out)}}
	res := &syncer.Result{Source: "docker://src.example/team/app:1", Destination: "docker://dst.example/m/app:1",
		Action: syncer.ActionCopied, BlobsCopied: 2, BytesCopied: 1234, BytesReused: 56, Seconds: 0.5}
	j.event(syncer.Event{Kind: syncer.EventImageDone, Result: res, Done: 1, Total: 3})

	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.Bytes())
	}
	want := map[string]any{"event": "image-done", "source": res.Source, "destination": res.Destination, "action": "copied",
		"bytesCopied": 1234.0, "bytesReused": 56.0, "seconds": 0.5, "done": 1.0, "total": 3.0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("image-done %q = %v, want %v (line %s)", k, got[k], v, out.Bytes())
		}
	}
}
