package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// The import rules of STYLE.md §1, as a test. Layers from the bottom: (0) types; (1) manifest,
// blobinfocache; (2) the transports, copy, inspect and integrity side by side; (3) sync (many
// copies, no transport) and transports/alltransports (the standard list); (4) cmd, examples
// and tests. Nothing outside cmd/ (and bench/) imports cmd/, nothing outside examples/ imports
// examples/, and examples/ imports only the public packages, as a user's program would.
// internal/... helpers may be used by layers 1–3; internal/testregistry, tests/conformance and
// tests/internal/... only by tests (the tests tree or _test.go files). An external test
// package (package x_test, where the godoc examples live) is a user of its package too: it
// may import every public package.

const modulePath = "github.com/imgcopy/imgcopy"

// transports are the transport groups; a package belongs to the group with the longest
// matching path prefix (so docker/internal/x belongs to docker, docker/tarfile to itself).
var transports = []string{"dir", "oci/layout", "oci/archive", "docker", "docker/tarfile", "docker/archive"}

// transportExceptions are the allowed transport-to-transport edges: an archive transport may
// import its own format package.
var transportExceptions = map[[2]string]bool{
	{"docker/archive", "docker/tarfile"}: true,
	{"oci/archive", "oci/layout"}:        true,
}

// noHTTP lists packages that must not link net/http, even indirectly: the archive transports
// stay independent of the registry client.
var noHTTP = []string{"types", "manifest", "dir", "oci/layout", "oci/archive", "docker/tarfile", "docker/archive"}

// group returns the rule group of a module-relative package path, or "" when the table does
// not know the package.
func group(pkg string) string {
	under := func(prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }
	best := ""
	for _, t := range transports {
		if under(t) && len(t) > len(best) {
			best = t
		}
	}
	switch {
	case best != "":
		return "transport:" + best
	case pkg == "types":
		return "types"
	case under("manifest"):
		return "manifest"
	case under("blobinfocache"):
		return "blobinfocache"
	case under("internal/testregistry"):
		return "testonly"
	case under("internal"):
		return "internal"
	case under("copy"):
		return "copy"
	case under("inspect"):
		return "inspect"
	case under("integrity"):
		return "integrity"
	case under("sync"):
		return "sync"
	case under("transports"):
		return "alltransports"
	case under("cmd"), under("bench"):
		return "cmd"
	case under("examples"):
		return "examples"
	case under("tests/conformance"), under("tests/internal"):
		return "testonly"
	case under("tests"):
		return "tests"
	}
	return ""
}

// allowedImport reports whether module package from may import module package to; test is
// true for imports made only by from's _test.go files. It returns an error naming the rule.
func allowedImport(from, to string, test bool) error {
	gf, gt := group(from), group(to)
	if gf == "" {
		return fmt.Errorf("package %s is not in the dependency table (tests/deps_test.go)", from)
	}
	if gt == "" {
		return fmt.Errorf("package %s is not in the dependency table (tests/deps_test.go)", to)
	}
	if gt == "cmd" && gf != "cmd" {
		return fmt.Errorf("%s imports %s: nothing outside cmd/ and bench/ may import them", from, to)
	}
	if gt == "examples" && gf != "examples" {
		return fmt.Errorf("%s imports %s: nothing outside examples/ may import it", from, to)
	}
	if gf == "tests" || gf == "testonly" {
		return nil
	}
	if gt == "testonly" || gt == "tests" {
		if test && gt == "testonly" {
			return nil
		}
		return fmt.Errorf("%s imports %s: test helpers are for tests and _test.go files only", from, to)
	}
	if gf == gt {
		return nil
	}
	allowed := map[string][]string{
		"types":         nil,
		"manifest":      {"types", "internal"},
		"blobinfocache": {"types", "internal"},
		"internal":      {"types", "manifest"},
		"copy":          {"types", "manifest", "blobinfocache", "internal"},
		"inspect":       {"types", "manifest", "internal"},
		// integrity checks stored images through types.ImageSource, as inspect reads them.
		"integrity": {"types", "manifest", "internal"},
		// sync plans and runs many copies; it gets references from its caller (and parses names
		// with a types.TransportList it is given), so it links no transport.
		"sync":          {"types", "manifest", "blobinfocache", "internal", "copy", "inspect"},
		"alltransports": {"types", "transport"},
		"examples":      publicGroups,
		"cmd":           {"types", "manifest", "blobinfocache", "internal", "copy", "inspect", "integrity", "sync", "alltransports", "transport"},
	}
	key := gf
	if strings.HasPrefix(gf, "transport:") {
		key = "transport"
		allowed[key] = []string{"types", "manifest", "internal"}
		if test {
			// Transport tests may use a real cache implementation.
			allowed[key] = append(allowed[key], "blobinfocache")
		}
		if transportExceptions[[2]string{strings.TrimPrefix(gf, "transport:"), strings.TrimPrefix(gt, "transport:")}] {
			return nil
		}
	}
	target := gt
	if strings.HasPrefix(gt, "transport:") {
		target = "transport"
	}
	for _, a := range allowed[key] {
		if a == target {
			return nil
		}
	}
	where := ""
	if test {
		where = " (in _test.go files)"
	}
	return fmt.Errorf("%s (%s) must not import %s (%s)%s", from, gf, to, gt, where)
}

// publicGroups are the groups of the public packages: what a program outside this module,
// an example or an external test package may import.
var publicGroups = []string{"types", "manifest", "blobinfocache", "copy", "inspect", "integrity", "sync", "alltransports", "transport"}

// allowedXTestImport reports whether the external test package of from (package x_test) may
// import to: anything from's own tests may, and every public package.
func allowedXTestImport(from, to string) error {
	err := allowedImport(from, to, true)
	if err == nil || group(to) == "" || group(to) == "examples" {
		return err
	}
	target := group(to)
	if strings.HasPrefix(target, "transport:") {
		target = "transport"
	}
	for _, g := range publicGroups {
		if g == target {
			return nil
		}
	}
	return err
}

type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Error        *struct{ Err string }
}

// goList runs `go list -e -json` with args from the module root and decodes the stream.
func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json"}, args...)...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(importPath string) (string, bool) {
	if importPath == modulePath {
		return "", true
	}
	r, ok := strings.CutPrefix(importPath, modulePath+"/")
	return r, ok
}

func TestImportRules(t *testing.T) {
	t.Parallel()
	pkgs := goList(t, "./...")
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	var violations []string
	for _, p := range pkgs {
		from, _ := rel(p.ImportPath)
		check := func(imports []string, allowed func(from, to string) error) {
			for _, imp := range imports {
				to, ok := rel(imp)
				if !ok || to == from {
					continue
				}
				if err := allowed(from, to); err != nil {
					violations = append(violations, err.Error())
				}
			}
		}
		check(p.Imports, func(from, to string) error { return allowedImport(from, to, false) })
		check(p.TestImports, func(from, to string) error { return allowedImport(from, to, true) })
		check(p.XTestImports, allowedXTestImport)
	}
	sort.Strings(violations)
	for _, v := range compact(violations) {
		t.Error(v)
	}
}

func TestAllowedXTestImportRule(t *testing.T) {
	cases := []struct {
		from, to string
		ok       bool
	}{
		{"copy", "oci/layout", true},
		{"copy", "dir", true},
		{"copy", "blobinfocache/boltdb", true},
		{"copy", "transports/alltransports", true},
		{"inspect", "docker/archive", true},
		{"manifest", "copy", true},
		{"types", "transports/alltransports", true},
		{"copy", "internal/verify", true}, // copy's own tests may
		{"types", "internal/iolimits", false},
		{"copy", "cmd/imgcopy", false},
		{"copy", "examples/memtransport", false},
		{"dir", "tests/conformance", true},
		{"copy", "somethingnew", false},
	}
	for _, tc := range cases {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			t.Parallel()
			err := allowedXTestImport(tc.from, tc.to)
			if (err == nil) != tc.ok {
				t.Errorf("allowedXTestImport(%q, %q) = %v, want allowed=%v", tc.from, tc.to, err, tc.ok)
			}
		})
	}
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// TestArchiveTransportsDoNotLinkHTTP checks that the local transports and the packages below
// them never depend on net/http, even through a third-party module.
func TestArchiveTransportsDoNotLinkHTTP(t *testing.T) {
	t.Parallel()
	var args []string
	for _, p := range noHTTP {
		args = append(args, "./"+p)
	}
	for _, p := range goList(t, args...) {
		if p.Error != nil {
			// Not written yet, or not compiling: TestImportRules and the build report it.
			t.Logf("skipping %s: %s", p.ImportPath, p.Error.Err)
			continue
		}
		for _, d := range p.Deps {
			if d == "net/http" {
				t.Errorf("%s links net/http", p.ImportPath)
			}
		}
	}
}

func TestAllowedImportRule(t *testing.T) {
	cases := []struct {
		from, to string
		test     bool
		ok       bool
	}{
		{"manifest", "types", false, true},
		{"manifest", "internal/iolimits", false, true},
		{"types", "manifest", false, false},
		{"types", "internal/iolimits", false, false},
		{"manifest", "copy", false, false},
		{"manifest", "blobinfocache", false, false},
		{"blobinfocache/boltdb", "blobinfocache/memory", false, true},
		{"blobinfocache/boltdb", "types", false, true},
		{"blobinfocache", "manifest", false, false},
		{"blobinfocache", "docker", false, false},
		{"dir", "types", false, true},
		{"dir", "internal/atomicfile", false, true},
		{"docker", "internal/credentials", false, true},
		{"docker", "copy", false, false},
		{"copy", "docker", false, false},
		{"copy", "oci/layout", true, false},
		{"copy", "blobinfocache/memory", false, true},
		{"copy", "internal/verify", false, true},
		{"dir", "oci/layout", false, false},
		{"oci/layout", "docker", false, false},
		{"docker/archive", "docker/tarfile", false, true},
		{"docker/archive", "docker", false, false},
		{"docker/tarfile", "docker", false, false},
		{"docker/tarfile", "docker/internal/auth", false, false},
		{"docker", "docker/internal/auth", false, true},
		{"oci/archive", "oci/layout", false, true},
		{"oci/layout", "oci/archive", false, false},
		{"dir", "blobinfocache/memory", false, false},
		{"dir", "blobinfocache/memory", true, true},
		{"docker", "internal/testregistry", false, false},
		{"docker", "internal/testregistry", true, true},
		{"dir", "tests/conformance", true, true},
		{"dir", "tests/conformance", false, false},
		{"cmd/imgcopy", "internal/testregistry", false, false},
		{"cmd/imgcopy", "docker/archive", false, true},
		{"cmd/imgcopy", "copy", false, true},
		{"cmd/imgcopy", "inspect", false, true},
		{"cmd/imgcopy", "blobinfocache/boltdb", false, true},
		{"inspect", "manifest", false, true},
		{"inspect", "copy", false, false},
		{"inspect", "oci/layout", false, false},
		{"copy", "cmd/imgcopy", false, false},
		{"tests", "internal/testregistry", false, true},
		{"tests", "docker", false, true},
		{"internal/credentials", "types", false, true},
		{"internal/credentials", "docker", false, false},
		{"internal/credentials", "copy", false, false},
		{"integrity", "manifest", false, true},
		{"integrity", "internal/verify", false, true},
		{"integrity", "docker", false, false},
		{"integrity", "copy", false, false},
		{"cmd/imgcopy", "integrity", false, true},
		{"sync", "copy", false, true},
		{"sync", "docker", false, false},
		{"sync", "transports/alltransports", false, false},
		{"copy", "sync", false, false},
		{"transports/alltransports", "docker", false, true},
		{"transports/alltransports", "copy", false, false},
		{"cmd/imgcopy", "transports/alltransports", false, true},
		{"cmd/imgcopy", "sync", false, true},
		{"tests", "transports/alltransports", false, true},
		{"sync", "cmd/imgcopy", false, false},
		{"docker", "cmd/imgcopy", true, false},
		{"tests", "cmd/imgcopy", false, false},
		{"examples/memtransport", "types", false, true},
		{"examples/memtransport", "manifest", false, true},
		{"examples/memtransport", "copy", false, true},
		{"examples/memtransport", "oci/layout", false, true},
		{"examples/memtransport", "transports/alltransports", false, true},
		{"examples/memtransport", "internal/iolimits", false, false},
		{"examples/memtransport", "cmd/imgcopy", false, false},
		{"examples/memtransport", "tests/conformance", true, true},
		{"examples/memtransport", "tests/conformance", false, false},
		{"copy", "examples/memtransport", false, false},
		{"tests", "examples/memtransport", true, false},
		{"types", "examples/memtransport", true, false},
		{"somethingnew", "types", false, false},
		{"dir", "somethingnew", false, false},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s->%s test=%v", tc.from, tc.to, tc.test)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := allowedImport(tc.from, tc.to, tc.test)
			if (err == nil) != tc.ok {
				t.Errorf("allowedImport(%q, %q, %v) = %v, want allowed=%v", tc.from, tc.to, tc.test, err, tc.ok)
			}
		})
	}
}
