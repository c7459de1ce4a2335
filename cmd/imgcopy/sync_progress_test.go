package main

import (
	"bytes"
	"encoding/json"
	"strings"
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

// TestSyncSaysWhatItResumed: the text lines and the sync-done event say how much of what was
// copied came from data an interrupted run kept.
func TestSyncSaysWhatItResumed(t *testing.T) {
	t.Parallel()
	res := syncer.Result{Destination: "docker://dst.example/m/app:1", Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Action: syncer.ActionCopied, BlobsCopied: 1, BytesCopied: 3 << 20, BytesResumed: 2 << 20}
	if line := resultLine(res); !strings.Contains(line, "resumed 2.0 MiB") {
		t.Errorf("image line %q does not say what was resumed", line)
	}
	rep := &syncer.Report{Destination: "docker://dst.example/m", Images: []syncer.Result{res}, BytesCopied: 3 << 20, BytesResumed: 2 << 20}
	if line := summaryLine(rep); !strings.Contains(line, "3.0 MiB copied (2.0 MiB of it resumed)") {
		t.Errorf("summary %q does not say what was resumed", line)
	}
	var out bytes.Buffer
	(&jsonSync{enc: json.NewEncoder(&out)}).finish(rep)
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got["bytesResumed"] != float64(2<<20) {
		t.Errorf("sync-done %s (%v): want bytesResumed", out.Bytes(), err)
	}
}
