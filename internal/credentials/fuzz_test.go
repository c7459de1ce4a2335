package credentials

import (
	"testing"
)

// FuzzLookupInFile feeds arbitrary auth file contents and lookup keys through parsing, key
// matching and decoding: no panics, and a match always names a key that exists.
func FuzzLookupInFile(f *testing.F) {
	seeds := []struct{ file, host, repo string }{
		{`{"auths":{"reg.example":{"auth":"` + b64("u:p") + `"}}}`, "reg.example", "a/b"},
		{`{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("u:p") + `"},"docker.io/me/app":{"identitytoken":"t"}}}`, "registry-1.docker.io", "me/app"},
		{`{"auths":{"http://localhost:5000/v2/":{"auth":"!!"}},"credHelpers":{"x":"y"}}`, "localhost:5000", ""},
		{`{"auths":{"reg.example/ns":{"username":"u","password":"p"}}}`, "reg.example", "ns/x"},
		{`{"auths":`, "h", "r"},
		{``, "", ""},
	}
	for _, s := range seeds {
		f.Add(s.file, s.host, s.repo)
	}
	f.Fuzz(func(t *testing.T, file, host, repo string) {
		for _, legacy := range []bool{false, true} {
			cfg, err := parseAuthFile([]byte(file), authFile{path: "fuzz", legacy: legacy})
			if err != nil {
				continue
			}
			key, entry, ok := bestAuthEntry(cfg.Auths, host, repo)
			if !ok {
				continue
			}
			if _, exists := cfg.Auths[key]; !exists {
				t.Fatalf("matched key %q not in file", key)
			}
			_, _ = entry.decode()
		}
	})
}
