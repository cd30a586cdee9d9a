//go:build !linux

package ejabberdtest

import "syscall"

// sysProcAttr uses the defaults: the harness targets Debian's ejabberd, so
// Linux is the platform that matters.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup does nothing outside Linux.
func killGroup(int) {}
