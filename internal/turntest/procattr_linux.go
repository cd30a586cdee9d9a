package turntest

import "syscall"

// sysProcAttr puts turnserver in its own process group, so that a
// terminal's Ctrl-C reaches only the test binary, and has the kernel kill
// it if the test binary dies without calling Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
