//go:build !unix

package archivefile

import "os"

// keyOf cannot identify files here; every open spools on its own.
func keyOf(st os.FileInfo) (spoolKey, bool) { return spoolKey{}, false }
