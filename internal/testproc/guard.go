package testproc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// guardExitWait bounds how long Group.Close waits for its guard.
const guardExitWait = 5 * time.Second

// A process started with guardEnv set is a guard: it runs runGuard instead
// of its program. The guard is this very executable (os.Executable), so a
// test binary needs nothing else on the machine.
func init() {
	if path := os.Getenv(guardEnv); path != "" {
		os.Exit(runGuard(path, os.Stdin))
	}
}

// guard is the watchdog process of a group.
type guard struct {
	cmd *exec.Cmd
	w   *os.File // write end of the guard's stdin; closing it wakes the guard
}

// startGuard starts a guard for the group recorded at path. It shares a
// pipe with this process: when this process dies, the kernel closes the
// write end, the guard reads end-of-file and stops the group.
func startGuard(path string) (*guard, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("testproc: guard: %w", err)
	}
	r, w, err := os.Pipe() // close-on-exec: no other child inherits w
	if err != nil {
		return nil, fmt.Errorf("testproc: guard: %w", err)
	}
	// Arguments in case the executable is a test binary that somehow did
	// not link this package's init: run no test.
	cmd := exec.Command(exe, "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), guardEnv+"="+path)
	cmd.Stdin = r
	// Its own process group, so that a terminal's Ctrl-C does not kill it
	// before the test binary, and no Pdeathsig: it must outlive us.
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	setpgid(cmd.SysProcAttr)
	err = cmd.Start()
	_ = r.Close()
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("testproc: start guard: %w", err)
	}
	return &guard{cmd: cmd, w: w}, nil
}

// stop wakes the guard (the group is already stopped and its record is
// about to be removed: the guard finds nothing to do) and waits for it.
func (g *guard) stop() error {
	_ = g.w.Close()
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	timer := time.NewTimer(guardExitWait)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("testproc: guard: %w", err)
		}
		return nil
	case <-timer.C:
		_ = g.cmd.Process.Kill()
		<-done
		return errors.New("testproc: guard did not exit, killed it")
	}
}

// runGuard waits until stdin reaches end-of-file (the owner closed it or
// died), then kills the members of the group recorded at path and removes
// the record. It returns the exit status.
func runGuard(path string, stdin io.Reader) int {
	// Signals for the terminal's foreground group are not for us.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	_, _ = io.Copy(io.Discard, stdin)
	rec, err := readRecord(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0 // Close has done the work
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The owner may still be alive (it closed the pipe in Close): then the
	// members are already stopped. If not, nobody will stop them gently.
	if _, err := reap(rec, path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
