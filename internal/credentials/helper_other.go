//go:build !unix

package credentials

import "os/exec"

// killGroupOnCancel leaves cmd as it is: without process groups only the helper itself is
// killed when its context ends.
func killGroupOnCancel(*exec.Cmd) {}
