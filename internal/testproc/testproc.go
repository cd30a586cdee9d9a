// Package testproc starts the external programs of tests (servers, peers,
// scripts) so that they die with the test, even when the test binary is
// killed with SIGKILL or by go test's -timeout.
//
// Three mechanisms, from the cheapest to the most thorough:
//
//   - Command, CommandContext and Start put the child in its own process
//     group (a terminal's Ctrl-C reaches only the test binary, and
//     Process.Stop signals the whole group) and ask the kernel to SIGKILL it
//     when the test binary dies (PR_SET_PDEATHSIG). Start forks from a
//     goroutine locked to its OS thread until the child is reaped: the kernel
//     sends the signal when the forking thread exits, not the process.
//   - A Group tags every process it starts with an environment variable
//     unique to the group, which the children's children inherit, so that
//     Group.Close finds and stops daemons that left the process group
//     (setsid, double fork). Processes that scrub their environment can be
//     added by PID with Group.Adopt.
//   - A Group records itself in a directory of its harness under
//     os.TempDir() (DirFor). NewGroup first stops the leftovers of groups
//     whose owner died (CleanStale), and with GroupOptions.Guard a small
//     watchdog process stops the group's processes as soon as the owner dies.
//
// Only processes that provably belong to a dead group are ever killed: they
// carry its tag, or they are adopted PIDs whose start time still matches.
package testproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Command returns exec.Command(name, arg...) prepared with Prepare.
func Command(name string, arg ...string) *exec.Cmd {
	cmd := exec.Command(name, arg...)
	Prepare(cmd)
	return cmd
}

// CommandContext returns exec.CommandContext(ctx, name, arg...) prepared
// with Prepare: when ctx is done, the whole process group gets SIGKILL.
func CommandContext(ctx context.Context, name string, arg ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, arg...)
	Prepare(cmd)
	return cmd
}

// Prepare sets cmd's process attributes: its own process group and, on
// Linux, SIGKILL when the parent dies. Other fields of cmd.SysProcAttr are
// kept. When cmd has a context (CommandContext), its cancellation kills the
// whole group instead of the leader only. Start calls it.
func Prepare(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	setProcAttr(cmd.SysProcAttr)
	if cmd.Cancel != nil {
		cmd.Cancel = func() error {
			if cmd.Process == nil {
				return nil
			}
			return KillGroup(cmd.Process.Pid, syscall.SIGKILL)
		}
	}
}

// KillGroup sends sig to the process group pgid. A group that no longer
// exists is not an error.
func KillGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("testproc: refusing to signal process group %d", pgid)
	}
	if err := killGroup(pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("testproc: signal %v to group %d: %w", sig, pgid, err)
	}
	return nil
}

// Process is a child started by Start. Its goroutine, locked to the OS
// thread that forked the child, waits for it.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // result of cmd.Wait, valid once done is closed
}

// Start prepares cmd (Prepare) and starts it from a goroutine locked to its
// OS thread, which then waits for it: do not call cmd.Wait, use
// Process.Wait or Process.Done.
func Start(cmd *exec.Cmd) (*Process, error) {
	Prepare(cmd)
	p := &Process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// PR_SET_PDEATHSIG fires when the thread that forked the child
		// exits. The Go runtime retires a thread when a goroutine exits
		// while locked to it, so the child could be killed at a random
		// moment, or, without the lock, never be killed if the forking
		// thread outlives everything. Holding the thread until the child
		// is reaped makes the signal mean "the test binary died".
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Run starts cmd with Start and waits for it, like cmd.Run.
func Run(cmd *exec.Cmd) error {
	p, err := Start(cmd)
	if err != nil {
		return err
	}
	return p.Wait()
}

// CombinedOutput runs cmd with Run and returns its standard output and
// standard error, like cmd.CombinedOutput.
func CombinedOutput(cmd *exec.Cmd) ([]byte, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("testproc: CombinedOutput with Stdout or Stderr already set")
	}
	// One writer for both: exec then gives the child a single pipe.
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := Run(cmd)
	return b.Bytes(), err
}

// Cmd returns the command of p.
func (p *Process) Cmd() *exec.Cmd { return p.cmd }

// Pid returns the process id of the child, which is also its process
// group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the child to exit and returns what cmd.Wait returned.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Exited reports whether the child has exited, and if so Wait's result.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the child's process group.
func (p *Process) Signal(sig syscall.Signal) error {
	return KillGroup(p.Pid(), sig)
}

// Stop sends SIGTERM to the child's process group, waits up to grace for the
// child to exit, then sends SIGKILL to the group, and waits for the child.
// The group gets SIGKILL in any case, so that no member outlives the leader.
// It returns whether the child ignored SIGTERM.
func (p *Process) Stop(grace time.Duration) (killed bool, err error) {
	if exited, _ := p.Exited(); !exited {
		err = p.Signal(syscall.SIGTERM)
		timer := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-timer.C:
			killed = true
		}
		timer.Stop()
	}
	if kerr := p.Signal(syscall.SIGKILL); kerr != nil {
		err = errors.Join(err, kerr)
	}
	<-p.done
	return killed, err
}

// alive reports whether process pid exists and started at start.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStartTime(pid)
	return err == nil && st == start
}
