//go:build !linux

package testproc

import (
	"errors"
	"syscall"
)

// errUnsupported: finding processes by tag and start time needs Linux's
// /proc. Elsewhere a Group only stops the processes it started itself.
var errUnsupported = errors.New("testproc: process lookup needs Linux /proc")

func setProcAttr(a *syscall.SysProcAttr) { setpgid(a) }

func procStartTime(pid int) (uint64, error) { return 0, errUnsupported }

func processes() ([]int, error) { return nil, errUnsupported }

func hasEnv(pid int, kv string) bool { return false }

func cmdline(pid int) string { return "?" }
