//go:build !unix

package testproc

import "syscall"

func setpgid(a *syscall.SysProcAttr) {}

func killGroup(pgid int, sig syscall.Signal) error { return errUnsupported }

func killPid(pid int, sig syscall.Signal) error { return errUnsupported }
