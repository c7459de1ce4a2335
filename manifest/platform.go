package manifest

import (
	"runtime"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
	"github.com/pkg/errors"
)

// SystemPlatform returns the platform to pick from an index: the running OS, architecture
// and (for arm) variant, overridden by sys.OSChoice, ArchitectureChoice and VariantChoice.
// The result is normalized. The arm variant of the running binary is not detected: arm is
// taken as v7 and arm64 as v8.
func SystemPlatform(sys *types.SystemContext) types.Platform {
	p := types.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if sys != nil {
		if sys.OSChoice != "" {
			p.OS = sys.OSChoice
		}
		if sys.ArchitectureChoice != "" {
			p.Architecture = sys.ArchitectureChoice
		}
		p.Variant = sys.VariantChoice
	}
	return NormalizePlatform(p)
}

// archAliases maps architecture spellings (uname, Debian, Go) to the OCI/Go names, with the
// variant an alias implies.
var archAliases = map[string]struct{ arch, variant string }{
	"x86_64":  {"amd64", ""},
	"x86-64":  {"amd64", ""},
	"amd64":   {"amd64", ""},
	"aarch64": {"arm64", ""},
	"arm64":   {"arm64", ""},
	"armhf":   {"arm", "v7"},
	"armel":   {"arm", "v6"},
	"arm":     {"arm", ""},
	"i386":    {"386", ""},
	"i686":    {"386", ""},
	"x86":     {"386", ""},
	"386":     {"386", ""},
}

// NormalizePlatform returns p with the OS and architecture in their OCI spelling and the
// default variants filled in (arm64 → v8, arm → v7; "8"/"7" → "v8"/"v7"), as containerd does.
func NormalizePlatform(p types.Platform) types.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	if a, ok := archAliases[p.Architecture]; ok {
		p.Architecture = a.arch
		if p.Variant == "" {
			p.Variant = a.variant
		}
	}
	if p.Variant != "" && !strings.HasPrefix(p.Variant, "v") && (p.Architecture == "arm" || p.Architecture == "arm64") {
		p.Variant = "v" + p.Variant
	}
	switch {
	case p.Architecture == "arm64" && p.Variant == "":
		p.Variant = "v8"
	case p.Architecture == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Architecture == "amd64" && p.Variant == "v1":
		p.Variant = ""
	}
	return p
}

// MatchesPlatform reports whether an image for have runs where want asks for: same OS and
// architecture after normalization; the same variant unless want has none; and, when want
// names an os.version (Windows), have's os.version equal to it or extending it.
func MatchesPlatform(want, have types.Platform) bool {
	wantVariantGiven := want.Variant != ""
	want, have = NormalizePlatform(want), NormalizePlatform(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if wantVariantGiven && want.Variant != have.Variant {
		return false
	}
	if want.OSVersion != "" && have.OSVersion != want.OSVersion &&
		!strings.HasPrefix(have.OSVersion, want.OSVersion+".") {
		return false
	}
	return true
}

// ChooseInstance returns the first instance of idx whose platform matches want; for arm it
// falls back to older variants (v7 runs v6 and v5 images). Only runnable instances are
// chosen (see Runnable). The error, wrapping types.ErrManifestNotFound, lists the platforms
// available.
func ChooseInstance(idx Index, want types.Platform) (IndexInstance, error) {
	instances := idx.Instances()
	for _, w := range platformCandidates(want) {
		for _, inst := range instances {
			if Runnable(inst) && MatchesPlatform(w, *inst.Platform) {
				return inst, nil
			}
		}
	}
	return IndexInstance{}, errors.Wrapf(types.ErrManifestNotFound, "no image for platform %s in the index; available: %s",
		FormatPlatform(want), availablePlatforms(instances))
}

// Docker buildx stores the provenance and SBOM of each image as an extra index entry with
// platform unknown/unknown and these annotations (BuildKit docs/attestations/attestation-storage.md).
const (
	dockerReferenceTypeAnnotation   = "vnd.docker.reference.type"
	dockerAttestationManifest       = "attestation-manifest"
	dockerReferenceDigestAnnotation = "vnd.docker.reference.digest"
)

// Runnable reports whether inst is an image a runtime could pick for a platform: it names a
// platform, is not itself an index, and is not an attestation (buildx's unknown/unknown
// entries, marked with vnd.docker.reference.type=attestation-manifest).
func Runnable(inst IndexInstance) bool {
	if inst.Platform == nil || IsIndexType(inst.MediaType) {
		return false
	}
	if inst.Annotations[dockerReferenceTypeAnnotation] == dockerAttestationManifest {
		return false
	}
	return inst.Platform.OS != "unknown" || inst.Platform.Architecture != "unknown"
}

// AttestationSubject returns the digest of the image a buildx attestation entry describes
// (its vnd.docker.reference.digest annotation), and false when inst is not an attestation.
func AttestationSubject(inst IndexInstance) (digest.Digest, bool) {
	if inst.Annotations[dockerReferenceTypeAnnotation] != dockerAttestationManifest {
		return "", false
	}
	d := digest.Digest(inst.Annotations[dockerReferenceDigestAnnotation])
	return d, d.Validate() == nil
}

// platformCandidates lists the normalized want (so that arm and arm64 name a variant) and
// then the compatible older arm variants, best first.
func platformCandidates(want types.Platform) []types.Platform {
	n := NormalizePlatform(want)
	out := []types.Platform{n}
	if n.Architecture != "arm" {
		return out
	}
	order := []string{"v8", "v7", "v6", "v5"}
	i := slices.Index(order, n.Variant)
	if i < 0 {
		return out
	}
	for _, v := range order[i+1:] {
		c := n
		c.Variant = v
		out = append(out, c)
	}
	return out
}

// availablePlatforms renders the platforms of instances for an error message.
func availablePlatforms(instances []IndexInstance) string {
	var names []string
	nested := false
	for _, inst := range instances {
		if Runnable(inst) {
			names = append(names, FormatPlatform(*inst.Platform))
		}
		nested = nested || IsIndexType(inst.MediaType)
	}
	switch {
	case len(names) == 0 && len(instances) > 0 && !nested:
		return "none, the index lists only artifacts or images without a platform (inspect --raw shows it)"
	case len(names) == 0:
		return "none"
	}
	return strings.Join(names, ", ")
}

// FormatPlatform renders p as "os/arch[/variant]", with " (os.version X)" when set.
func FormatPlatform(p types.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	if p.OSVersion != "" {
		s += " (os.version " + p.OSVersion + ")"
	}
	return s
}

// ParsePlatform parses "os/arch[/variant]" as typed on a command line. The result is not
// normalized; matching normalizes.
func ParsePlatform(s string) (types.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return types.Platform{}, errors.Errorf("invalid platform %q, expected os/arch[/variant]", s)
	}
	p := types.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}
