package tarindex

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkBuild measures indexing an archive of 2000 small members.
func BenchmarkBuild(b *testing.B) {
	members := make([]member, 2000)
	for i := range members {
		members[i] = member{name: fmt.Sprintf("blobs/sha256/%064x", i), content: "0123456789abcdef"}
	}
	data := buildTar(b, members)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if _, err := Build(bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
