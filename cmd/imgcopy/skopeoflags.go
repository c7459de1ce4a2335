package main

import (
	"strings"

	"github.com/pkg/errors"
)

// skopeoOnly maps flags of skopeo copy and skopeo sync that imgcopy does not have to what to
// use instead, so that a skopeo command line moved over gets a way forward, not just
// "flag provided but not defined".
var skopeoOnly = map[string]string{
	"src-username":                 "use --src-creds USERNAME[:PASSWORD]",
	"src-password":                 "use --src-creds USERNAME[:PASSWORD]",
	"dest-username":                "use --dest-creds USERNAME[:PASSWORD]",
	"dest-password":                "use --dest-creds USERNAME[:PASSWORD]",
	"remove-signatures":            "imgcopy copies no signatures unless asked to (--referrers, --digest-tags): drop the flag",
	"sign-by":                      "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-by-sigstore":             "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-by-sigstore-private-key": "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-by-sq-fingerprint":       "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-passphrase-file":         "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"sign-identity":                "imgcopy does not sign images: sign the copy afterwards (e.g. cosign sign)",
	"encryption-key":               "imgcopy does not encrypt layers",
	"decryption-key":               "imgcopy does not decrypt layers",
}

// skopeoFlagError returns a usage error naming the alternative when err is urfave/cli's
// "flag provided but not defined: -NAME" for a flag of skopeoOnly, else err.
func skopeoFlagError(err error) error {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	i := strings.Index(msg, undefined)
	if i < 0 {
		return err
	}
	name := strings.TrimLeft(msg[i+len(undefined):], "-")
	if alt, ok := skopeoOnly[name]; ok {
		return errors.Errorf("--%s is a skopeo flag imgcopy does not have: %s", name, alt)
	}
	return err
}
