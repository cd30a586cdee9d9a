package ejabberdtest

import "syscall"

// sysProcAttr puts a child in its own process group, so that a terminal's
// Ctrl-C reaches only the test binary and the harness can kill the VM with
// its helpers, and has the kernel kill it if the test binary dies without
// calling Stop (PR_SET_PDEATHSIG). erl execs the VM, so the signal reaches
// the VM itself.
//
// Pdeathsig fires when the OS thread that started the child exits; the Go
// runtime only ends threads whose goroutine exits while locked to them
// (runtime.LockOSThread), which the harness does not do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills what is left of the process group led by pid.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
