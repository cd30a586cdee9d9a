package prosodytest

import "syscall"

// sysProcAttr puts prosody in its own process group, so that a terminal's
// Ctrl-C reaches only the test binary, and has the kernel kill it if the
// test binary dies without calling Stop.
//
// Pdeathsig fires when the OS thread that started the child exits; the Go
// runtime only ends threads whose goroutine exits while locked to them
// (runtime.LockOSThread), which Start does not do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
