package ejabberdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jinglekit/jinglekit/internal/testproc"
)

// errPortInUse reports that ejabberd could not bind one of the ports it
// was given; Start then retries with other ports.
var errPortInUse = errors.New("ejabberd could not bind its port")

const (
	probeInterval = 100 * time.Millisecond
	ctlWaitDelay  = 2 * time.Second
)

// spawn starts cmd (made by a testproc.Group: its own process group,
// killed with the test binary) with its output appended to outFile.
func spawn(cmd *exec.Cmd, outFile string) (*testproc.Process, error) {
	out, err := os.OpenFile(outFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ejabberdtest: open output file: %w", err)
	}
	cmd.Stdout = out
	cmd.Stderr = out
	p, err := testproc.Start(cmd)
	_ = out.Close() // the child has its own copy
	if err != nil {
		return nil, fmt.Errorf("ejabberdtest: start %s: %w", cmd.Path, err)
	}
	return p, nil
}

// epmd is the private Erlang port mapper of one node or cluster: the nodes
// find each other (and the harness's control node finds them) through it,
// and it never outlives the test binary, unlike the daemon erl starts.
type epmd struct {
	port int
	proc *testproc.Process
}

// startEpmd runs epmd in the foreground on a free loopback port.
func startEpmd(ctx context.Context, group *testproc.Group, progs programs, dir string) (*epmd, error) {
	for attempt := 1; ; attempt++ {
		ports, err := freeTCPPorts(1)
		if err != nil {
			return nil, fmt.Errorf("ejabberdtest: pick epmd port: %w", err)
		}
		cmd := group.Command(progs.epmd, "-port", strconv.Itoa(ports[0]), "-address", "127.0.0.1")
		cmd.Dir = dir
		p, err := spawn(cmd, filepath.Join(dir, "epmd.out"))
		if err != nil {
			return nil, err
		}
		e := &epmd{port: ports[0], proc: p}
		err = waitTCP(ctx, p, loopback(ports[0]))
		if err == nil {
			return e, nil
		}
		e.stop()
		if attempt == startAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("ejabberdtest: epmd: %w\n%s", err, tailFile(filepath.Join(dir, "epmd.out"), 10))
		}
	}
}

func (e *epmd) stop() { _, _ = e.proc.Stop(time.Second) }

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(ctx context.Context, p *testproc.Process, addr string) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-p.Done():
			return fmt.Errorf("exited during start-up: %v", p.Wait())
		case <-ctx.Done():
			return fmt.Errorf("not listening on %s: %w", addr, ctx.Err())
		case <-time.After(probeInterval):
		}
	}
}

// env is the environment of the node's VM and of the control node.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ERL_") && !strings.HasPrefix(kv, "EJABBERD_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+s.Dir, // where Erlang would look for .erlang.cookie
		"ERL_EPMD_PORT="+strconv.Itoa(s.run.epmd.port),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_LIBS="+s.progs.libs,
		"ERL_CRASH_DUMP_BYTES=0",
		"EJABBERD_CONFIG_PATH="+s.ConfigFile,
		"EJABBERD_LOG_PATH="+s.LogFile,
		"EJABBERD_PID_PATH="+filepath.Join(s.Dir, "ejabberd.pid"),
	)
}

// erlArgs are the VM arguments shared by the node and the control node:
// distribution over loopback only, through the private epmd, with the
// cluster's cookie.
func (s *Server) erlArgs(name string) []string {
	return []string{
		"-sname", name, "-setcookie", s.cookie,
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-start_epmd", "false",
	}
}

// launchLocked starts the node's VM with the current config and waits
// until ejabberd runs. On failure no process is left running. s.mu must be
// held.
func (s *Server) launchLocked(ctx context.Context) error {
	var offset int64
	if fi, err := os.Stat(s.LogFile); err == nil {
		offset = fi.Size()
	}
	args := append(s.erlArgs(s.Node), "+K", "true",
		"-mnesia", "dir", strconv.Quote(filepath.Join(s.Dir, "spool")),
		"-s", "ejabberd", "-noinput")
	cmd := s.run.group.Command(s.progs.erl, args...)
	cmd.Dir = s.Dir
	cmd.Env = s.run.group.Env(s.env())
	p, err := spawn(cmd, filepath.Join(s.Dir, "erl.out"))
	if err != nil {
		return err
	}
	s.proc = p
	if err := s.waitReady(ctx, p, offset); err != nil {
		_ = s.stopProcessLocked()
		if errors.Is(err, errPortInUse) {
			return err
		}
		return fmt.Errorf("ejabberdtest: node %s: %w\n%s", s.Node, err, s.diagnostics())
	}
	return nil
}

// waitReady waits until the HTTP API says ejabberd is running and the c2s
// port accepts connections.
func (s *Server) waitReady(ctx context.Context, p *testproc.Process, logOffset int64) error {
	var last error
	for {
		if line := findInFile(s.LogFile, logOffset, "eaddrinuse", "already in use"); line != "" {
			return fmt.Errorf("%w: %s", errPortInUse, line)
		}
		out, err := s.API(ctx, "status", map[string]any{})
		if err == nil && strings.Contains(out, "is running") {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", s.C2SAddr)
			if err == nil {
				return c.Close()
			}
			last = err
		} else if err != nil {
			last = err
		} else {
			last = fmt.Errorf("status %q", out)
		}
		select {
		case <-p.Done():
			return fmt.Errorf("exited during start-up: %v", p.Wait())
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last probe: %v)", ctx.Err(), last)
		case <-time.After(probeInterval):
		}
	}
}

// stopProcessLocked ends the node's VM, if it runs, and waits for it.
// s.mu must be held.
func (s *Server) stopProcessLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if exited, err := p.Exited(); exited {
		_, _ = p.Stop(0) // the VM's helpers share its group
		return fmt.Errorf("ejabberdtest: node %s had exited by itself: %v\n%s", s.Node, err, s.diagnostics())
	}
	if _, err := p.Stop(stopGrace); err != nil {
		return fmt.Errorf("ejabberdtest: stop node %s: %w", s.Node, err)
	}
	return nil
}

// Ctl runs one ejabberdctl command (e.g. "join_cluster", "ejd1@localhost")
// against the node from a hidden Erlang control node, as ejabberdctl does,
// and returns its output.
func (s *Server) Ctl(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("ejabberdtest: Ctl without a command")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails: Go crashes the program if the system RNG does
	name := "ctl" + hex.EncodeToString(b) + "@localhost"
	cmdArgs := append(s.erlArgs(name), "-hidden", "-noinput", "-s", "ejabberd_ctl", "-extra", s.Node)
	cmd := s.run.group.CommandContext(ctx, s.progs.erl, append(cmdArgs, args...)...)
	cmd.Dir = s.Dir
	cmd.Env = s.run.group.Env(s.env())
	cmd.WaitDelay = ctlWaitDelay
	out, err := testproc.CombinedOutput(cmd)
	if err != nil {
		return string(out), fmt.Errorf("ejabberdtest: ejabberdctl %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// diagnostics describes the node's output for start-up errors.
func (s *Server) diagnostics() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- last lines of %s:\n%s", s.LogFile, s.LogTail(30))
	if out := tailFile(filepath.Join(s.Dir, "erl.out"), 20); strings.TrimSpace(out) != "" {
		fmt.Fprintf(&b, "\n--- erl stdout/stderr:\n%s", out)
	}
	return b.String()
}

// ports are the listening ports of one node.
type ports struct {
	c2s, proxy, api, stun int
	relayMin, relayMax    int
}

// relayBase, relayBlocks and relayBlock place TURN relay port ranges below
// Linux's ephemeral range and above the fixed ports of the shared
// harnesses (up to 25280).
const (
	relayBase   = 26000
	relayBlocks = 60
	relayBlock  = 100
)

// pickPorts returns ports that were free a moment ago; the relay range is
// block relayBlock of the run (ejabberd picks relay ports in it at random),
// distinct for the nodes of a cluster.
func pickPorts(block int) (ports, error) {
	tcp, err := freeTCPPorts(3)
	if err != nil {
		return ports{}, err
	}
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return ports{}, err
	}
	stun := u.LocalAddr().(*net.UDPAddr).Port
	_ = u.Close()
	lo := relayBase + block%relayBlocks*relayBlock
	return ports{c2s: tcp[0], proxy: tcp[1], api: tcp[2], stun: stun, relayMin: lo, relayMax: lo + relayBlock - 1}, nil
}

// freeTCPPorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago.
func freeTCPPorts(n int) ([]int, error) {
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // keep it open until all are chosen so that they differ
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// randomBlock returns a random relay port block number.
func randomBlock() int {
	var b [2]byte
	_, _ = rand.Read(b[:]) // never fails: Go crashes the program if the system RNG does
	return int(b[0])<<8 | int(b[1])
}

// newCookie returns a random Erlang cookie.
func newCookie() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails: Go crashes the program if the system RNG does
	return "ejt" + hex.EncodeToString(b)
}

// findInFile returns the first line of path after offset containing one of
// needles, or "".
func findInFile(path string, offset int64, needles ...string) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) <= offset {
		return ""
	}
	for _, line := range strings.Split(string(data[offset:]), "\n") {
		for _, n := range needles {
			if strings.Contains(line, n) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

// tailFile returns the last n lines of path.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
