//go:build !linux

package turntest

import "syscall"

// sysProcAttr uses the defaults: the harness targets Debian's coturn.
func sysProcAttr() *syscall.SysProcAttr { return nil }
