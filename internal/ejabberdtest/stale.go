package ejabberdtest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownerFile, in each run's directory, names the test binary that owns it:
// its pid and its start time (field 22 of /proc/PID/stat), which tell it
// from a later process with the same pid.
const ownerFile = "owner"

// writeOwner marks dir as owned by this process.
func writeOwner(dir string) error {
	id := processID(os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(id), 0o600); err != nil {
		return fmt.Errorf("ejabberdtest: write owner: %w", err)
	}
	return nil
}

// processID is "PID START" for a running process, or "" when it is gone.
func processID(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); the start time is field 22.
	if len(fields) < 20 {
		return ""
	}
	return strconv.Itoa(pid) + " " + fields[19]
}

// cleanStale removes the directories under tmp of runs whose test binary
// is gone, after killing every process still running from them (a node or
// epmd whose PR_SET_PDEATHSIG did not fire, e.g. because the harness ran
// on another system, or processes of an older harness). Only Linux has
// the /proc this needs; elsewhere it does nothing.
func cleanStale(tmp string, log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
		switch {
		case os.IsNotExist(err):
			// Being created right now, or left by a run killed between
			// creating it and writing the owner.
			if fi, err := os.Stat(dir); err != nil || time.Since(fi.ModTime()) < time.Minute {
				continue
			}
		case err != nil:
			continue
		default:
			if f := strings.Fields(string(owner)); len(f) == 2 {
				if pid, _ := strconv.Atoi(f[0]); pid > 0 && processID(pid) == f[0]+" "+f[1] {
					continue // its test binary still runs
				}
			}
		}
		for _, pid := range processesUnder(dir) {
			log.Warn("ejabberdtest: killing a process left by a killed test", "pid", pid, "dir", dir)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		log.Info("ejabberdtest: removing a directory left by a killed test", "dir", dir)
		_ = os.RemoveAll(dir)
	}
}

// processesUnder lists the processes whose working directory is dir or
// below it, or whose command line names it.
func processesUnder(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") || strings.Contains(string(cmdline), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}
