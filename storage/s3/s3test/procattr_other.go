//go:build !linux

package s3test

import "os/exec"

// killWithParent has no portable equivalent outside Linux; there the server
// is stopped by the test's cleanup only.
func killWithParent(cmd *exec.Cmd) {}
