package manifest

import "testing"

// BenchmarkFromBlob measures parsing single-image manifests of each schema.
func BenchmarkFromBlob(b *testing.B) {
	for _, name := range []string{"oci-manifest.json", "docker-schema2.json", "schema1-libtrust-signed.json"} {
		blob := readTestdata(b, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(blob)))
			for range b.N {
				if _, err := FromBlob(blob, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIndexFromBlob measures parsing indexes and lists.
func BenchmarkIndexFromBlob(b *testing.B) {
	for _, name := range []string{"oci-index.json", "docker-list.json"} {
		blob := readTestdata(b, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(blob)))
			for range b.N {
				if _, err := IndexFromBlob(blob, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDigestSchema1 measures the JWS payload extraction of a signed schema1 digest.
func BenchmarkDigestSchema1(b *testing.B) {
	blob := readTestdata(b, "schema1-signed.json")
	for range b.N {
		if _, err := Digest(blob); err != nil {
			b.Fatal(err)
		}
	}
}
