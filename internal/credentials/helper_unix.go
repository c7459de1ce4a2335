//go:build unix

package credentials

import (
	"os/exec"
	"syscall"
)

// killGroupOnCancel runs cmd in a process group of its own and ends the whole group when its
// context ends: a helper that is a shell script leaves no child behind (one that would also
// keep our stderr open).
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
