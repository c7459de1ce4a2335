package types

import "testing"

func TestReuseOptionsAcceptsCompression(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name               string
		required, original string
		candidate          string
		want, wantOriginal bool
	}{
		{name: "no requirement", original: GzipCompressorName, candidate: ZstdCompressorName, want: true, wantOriginal: true},
		{name: "no requirement, unknown", candidate: "", want: true, wantOriginal: true},
		{name: "required and equal", required: ZstdCompressorName, original: ZstdCompressorName, candidate: ZstdCompressorName, want: true, wantOriginal: true},
		{name: "required, other", required: ZstdCompressorName, original: GzipCompressorName, candidate: GzipCompressorName},
		{name: "required, unknown", required: GzipCompressorName, candidate: ""},
		{name: "uncompressed required", required: UncompressedCompressorName, original: GzipCompressorName, candidate: UncompressedCompressorName, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := ReuseOptions{RequiredCompression: tc.required, OriginalCompression: tc.original}
			if got := o.AcceptsCompression(tc.candidate); got != tc.want {
				t.Errorf("AcceptsCompression(%q) = %v, want %v", tc.candidate, got, tc.want)
			}
			if got := o.AcceptsOriginal(); got != tc.wantOriginal {
				t.Errorf("AcceptsOriginal() = %v, want %v", got, tc.wantOriginal)
			}
		})
	}
}
