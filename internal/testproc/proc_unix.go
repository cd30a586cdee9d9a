//go:build unix && !linux

package testproc

import "syscall"

func setpgid(a *syscall.SysProcAttr) { a.Setpgid = true }

func killGroup(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }

func killPid(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
