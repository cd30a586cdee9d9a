package ejabberdtest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// is gone. Their processes are gone too: the kernel killed them with the
// test binary (PR_SET_PDEATHSIG), and testproc.NewGroup, called first,
// stopped any that survived. Only Linux has the /proc this needs to tell a
// live owner; elsewhere no directory is ever taken for stale.
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
		log.Info("ejabberdtest: removing a directory left by a killed test", "dir", dir)
		_ = os.RemoveAll(dir)
	}
}
