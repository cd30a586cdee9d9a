//go:build !linux

package prosodytest

import "syscall"

// sysProcAttr uses the defaults: the harness targets Debian's prosody, so
// Linux is the platform that matters.
func sysProcAttr() *syscall.SysProcAttr { return nil }
