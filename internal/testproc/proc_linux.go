package testproc

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// setProcAttr puts the child in its own process group and has the kernel
// send it SIGKILL when the thread that forked it exits.
func setProcAttr(a *syscall.SysProcAttr) {
	setpgid(a)
	a.Pdeathsig = syscall.SIGKILL
}

func setpgid(a *syscall.SysProcAttr) {
	a.Setpgid = true
	a.Pgid = 0
}

func killGroup(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }

func killPid(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// procStartTime reads field 22 (starttime) of /proc/PID/stat. A zombie
// (exited, not yet reaped) is reported as gone: fs.ErrNotExist.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain
	// spaces and parentheses: the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("testproc: malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	const state, starttime = 3 - 3, 22 - 3 // fields[0] is field 3
	if len(fields) <= starttime {
		return 0, fmt.Errorf("testproc: short /proc/%d/stat", pid)
	}
	if fields[state] == "Z" || fields[state] == "X" {
		return 0, fmt.Errorf("testproc: process %d has exited: %w", pid, fs.ErrNotExist)
	}
	return strconv.ParseUint(fields[starttime], 10, 64)
}

// processes returns the PIDs of all processes, except this one.
func processes() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid <= 1 {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// hasEnv reports whether the initial environment of process pid contains
// the entry kv ("NAME=value"). Zombies and other users' processes have no
// readable environment: false.
func hasEnv(pid int, kv string) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for entry := range bytes.SplitSeq(data, []byte{0}) {
		if string(entry) == kv {
			return true
		}
	}
	return false
}

// cmdline returns the command line of process pid, for messages.
func cmdline(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
}
