package main

import (
	"strings"

	"github.com/pkg/errors"
	"github.com/urfave/cli/v2"
)

// skopeoOnly maps flags of skopeo (its global flags and those of copy, sync, inspect,
// list-tags, delete, login and logout) that imgcopy does not have to what to use instead, so
// that a skopeo command line moved over gets a way forward, not just "flag provided but not
// defined". skopeoOnlyIn overrides it for one command.
var skopeoOnly = map[string]string{
	"src-username":                        "use --src-creds USERNAME[:PASSWORD]",
	"src-password":                        "use --src-creds USERNAME[:PASSWORD]",
	"dest-username":                       "use --dest-creds USERNAME[:PASSWORD]",
	"dest-password":                       "use --dest-creds USERNAME[:PASSWORD]",
	"username":                            "use --creds USERNAME[:PASSWORD]",
	"password":                            "use --creds USERNAME[:PASSWORD]",
	"sign-by":                             "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-by-sigstore":                    "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-by-sigstore-private-key":        "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-by-sq-fingerprint":              "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-passphrase-file":                "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-identity":                       "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"encryption-key":                      "imgcopy does not encrypt layers",
	"encrypt-layer":                       "imgcopy does not encrypt layers",
	"decryption-key":                      "imgcopy does not decrypt layers",
	"dest-compress":                       "use --dest-compress-format gzip (or zstd)",
	"dest-oci-accept-uncompressed-layers": "imgcopy keeps uncompressed layers as they are in an OCI layout: drop the flag",
	"dest-precompute-digests":             "imgcopy always asks the registry which blobs it has before uploading: drop the flag",
	"src-shared-blob-dir":                 "imgcopy has no shared blob directory: keep the images in one OCI layout (oci:DIR:NAME), which stores each blob once",
	"dest-shared-blob-dir":                "imgcopy has no shared blob directory: keep the images in one OCI layout (oci:DIR:NAME), which stores each blob once",
	"shared-blob-dir":                     "imgcopy has no shared blob directory: keep the images in one OCI layout (oci:DIR:NAME), which stores each blob once",
	"src-daemon-host":                     "imgcopy has no docker-daemon: transport: docker save into a docker-archive: and copy from that",
	"dest-daemon-host":                    "imgcopy has no docker-daemon: transport: copy to a docker-archive: and docker load it",
	"daemon-host":                         "imgcopy has no docker-daemon: transport: docker save into a docker-archive: and use that",
	"policy":                              "imgcopy enforces no signature policy: verify signatures before copying (e.g. cosign verify)",
	"registries.d":                        "imgcopy reads no registries.d configuration and copies no lookaside signatures: drop the flag",
	"command-timeout":                     "run imgcopy under timeout(1) (timeout 10m imgcopy ...); --read-timeout already bounds a stalled transfer",
	"require-signed":                      "imgcopy enforces no signature policy: verify signatures before copying (e.g. cosign verify)",
	"registries-conf":                     "imgcopy reads no registries.conf (no short-name search, mirrors or blocked registries): name images in full, e.g. docker://docker.io/library/busybox",
	"user-agent-prefix":                   "imgcopy sends its own User-Agent: drop the flag",
	"compat-auth-file":                    "imgcopy login writes the file --authfile names, in the format Docker's config.json shares: --authfile ~/.docker/config.json",
}

// sideFlags are the hints for the unprefixed access flags of inspect (and skopeo's deprecated
// global --tls-verify) given to copy or sync, which name the side.
var sideFlags = map[string]string{
	"tls-verify":     "use --src-tls-verify and/or --dest-tls-verify",
	"creds":          "use --src-creds and/or --dest-creds",
	"cert-dir":       "use --src-cert-dir and/or --dest-cert-dir",
	"registry-token": "use --src-registry-token and/or --dest-registry-token",
	"no-creds":       "use --src-no-creds and/or --dest-no-creds",
}

// skopeoOnlyIn holds the hints that differ for one command ("" is the default copy).
var skopeoOnlyIn = map[string]map[string]string{
	"":       sideFlags,
	"copy":   sideFlags,
	"sync":   sideFlags,
	"login":  {"verbose": "imgcopy login prints the file it wrote anyway: drop the flag", "v": "imgcopy login prints the file it wrote anyway: drop the flag"},
	"logout": {"tls-verify": "logout does not contact the registry: drop the flag"},
}

// skopeoFlagError returns a usage error naming the alternative when err is urfave/cli's
// "flag provided but not defined: -NAME" for a flag of skopeoOnly (or of skopeoOnlyIn for
// command, "" for the app itself), else err.
func skopeoFlagError(command string, err error) error {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	i := strings.Index(msg, undefined)
	if i < 0 {
		return err
	}
	name := strings.TrimLeft(msg[i+len(undefined):], "-")
	dashes := "--"
	if len(name) == 1 {
		dashes = "-"
	}
	if alt, ok := skopeoOnlyIn[command][name]; ok {
		if command == "" {
			command = "copy"
		}
		return errors.Errorf("%s%s is not a flag of imgcopy %s: %s", dashes, name, command, alt)
	}
	if alt, ok := skopeoOnly[name]; ok {
		return errors.Errorf("%s%s is a skopeo flag imgcopy does not have: %s", dashes, name, alt)
	}
	return err
}

// helpCommand rewrites skopeo's "help [COMMAND]" as "[COMMAND] --help": imgcopy has no help
// command (a first argument is SRC of the default copy), and "help" is no image name.
func helpCommand(args []string) []string {
	if len(args) < 2 || args[1] != "help" {
		return args
	}
	return append(append([]string{args[0]}, args[2:]...), "--help")
}

// skopeoCommands maps skopeo's commands that imgcopy does not have to what to use instead.
var skopeoCommands = map[string]string{
	"standalone-sign":                               "imgcopy does not sign images: use cosign sign (or cosign sign-blob)",
	"standalone-verify":                             "imgcopy does not verify signatures: use cosign verify",
	"generate-sigstore-key":                         "imgcopy does not make signing keys: use cosign generate-key-pair",
	"untrusted-signature-dump-without-verification": "imgcopy does not read simple signing signatures: imgcopy referrers lists an image's signatures",
	"experimental-image-proxy":                      "imgcopy has no image proxy: use the Go library (see README.md)",
}

// skopeoCommandError returns a usage error when the command of args (the first argument
// that is neither a flag nor a flag's value) is one of skopeoCommands: the default copy
// would take it as SRC and complain about its flags or argument count instead.
func skopeoCommandError(app *cli.App, args []string) error {
	arity := flagArity(app.Flags)
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return nil
		}
		name, inline, isFlag := splitFlag(a)
		if !isFlag {
			if alt, ok := skopeoCommands[a]; ok {
				return usageErrorf("%s is a skopeo command imgcopy does not have: %s", a, alt)
			}
			return nil
		}
		if arity[name] && !inline {
			i++
		}
	}
	return nil
}

// skopeoTransports maps skopeo's transports that imgcopy does not have to what to use instead.
var skopeoTransports = map[string]string{
	"docker-daemon":      "imgcopy does not talk to the Docker daemon: docker save -o FILE.tar IMAGE and use docker-archive:FILE.tar (docker load -i FILE.tar to go back)",
	"containers-storage": "imgcopy does not read podman's or buildah's storage: podman save --format oci-archive -o FILE.tar IMAGE and use oci-archive:FILE.tar (podman load -i FILE.tar to go back)",
	"ostree":             "imgcopy has no ostree: transport",
	"sif":                "imgcopy has no sif: transport",
	"tarball":            "imgcopy has no tarball: transport: build an image with a layer from the tarball instead",
}

// skopeoTransportHint returns what to use instead of the skopeo transport that msg, an
// unknown-transport error, names; "" when it names none.
func skopeoTransportHint(msg string) string {
	for name, alt := range skopeoTransports {
		if strings.Contains(msg, `transport "`+name+`"`) || strings.Contains(msg, `name "`+name+`:`) {
			return alt
		}
	}
	return ""
}
