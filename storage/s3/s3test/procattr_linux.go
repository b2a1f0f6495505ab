package s3test

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the server when the test binary dies
// without running its cleanups (a panic, a `go test -timeout`), so no server
// outlives its test.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
