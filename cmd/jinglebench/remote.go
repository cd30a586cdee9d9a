package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// childReceiver is the child kind that runs the receiving peer of a
// throughput case in its own process, so that each peer's CPU time is
// measured apart, as two clients on two machines would use it.
const childReceiver = "receiver"

// The receiver's line protocol. The parent writes to the child's standard
// input, one per file:
//
//	expect NAME SIZE NAMESPACE PUNCH(0|1)
//
// and the child answers on its standard output, after "ready" once logged
// in, one line per expected file:
//
//	result NAME ok
//	result NAME error MESSAGE…
//
// The child logs out and exits when its standard input ends.

// remotePeer is a receiving peer in a child process.
type remotePeer struct {
	jid   jid.JID
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	waiters map[string]chan error
	exited  chan struct{} // closed when the child's output ends
}

// startReceiver starts a child receiving as bob with the configuration of
// transport case tc, and waits until it is logged in.
func (h *harness) startReceiver(ctx context.Context, tc transportCase, resource string) (*remotePeer, error) {
	return h.startReceiverOn(ctx, h.env, tc, resource)
}

// startReceiverOn is startReceiver on the server and accounts of env
// (env.Bob receives).
func (h *harness) startReceiverOn(ctx context.Context, env *Env, tc transportCase, resource string) (*remotePeer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	envJSON, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	addr, err := jid.Parse(env.Bob.JID + "/" + resource)
	if err != nil {
		return nil, err
	}
	args := []string{"-child", childReceiver, "-case", tc.name, "-resource", resource, "-timeout", h.o.timeout.String()}
	if h.o.verbose {
		args = append(args, "-v")
	}
	if h.o.cpuprofile != "" {
		args = append(args, "-cpuprofile", h.o.cpuprofile+"."+childReceiver+"-"+tc.name)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envChild+"="+string(envJSON))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &remotePeer{jid: addr, cmd: cmd, stdin: stdin, waiters: map[string]chan error{}, exited: make(chan struct{})}
	ready := make(chan struct{})
	go r.read(stdout, ready)
	select {
	case <-ready:
		return r, nil
	case <-r.exited:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	r.close()
	return nil, errors.New("the receiving child did not log in")
}

// read dispatches the child's lines until its output ends.
func (r *remotePeer) read(out io.Reader, ready chan struct{}) {
	defer close(r.exited)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			close(ready)
			continue
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) < 3 || f[0] != "result" {
			continue
		}
		var err error
		if f[2] != "ok" {
			msg := "?"
			if len(f) == 4 {
				msg = f[3]
			}
			err = errors.New(msg)
		}
		r.mu.Lock()
		ch := r.waiters[f[1]]
		delete(r.waiters, f[1])
		r.mu.Unlock()
		if ch != nil {
			ch <- err
		}
	}
}

func (r *remotePeer) addr() jid.JID { return r.jid }

func (r *remotePeer) pid() int { return r.cmd.Process.Pid }

func (r *remotePeer) expect(name string, size int64, ns string, punch bool) func(context.Context) error {
	ch := make(chan error, 1)
	r.mu.Lock()
	r.waiters[name] = ch
	r.mu.Unlock()
	p := 0
	if punch {
		p = 1
	}
	_, werr := fmt.Fprintf(r.stdin, "expect %s %d %s %d\n", name, size, ns, p)
	return func(ctx context.Context) error {
		if werr != nil {
			return werr
		}
		select {
		case err := <-ch:
			return err
		case <-r.exited:
			return errors.New("the receiving child exited")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close ends the child: it logs out when its input ends.
func (r *remotePeer) close() error {
	r.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		return errors.Join(errors.New("the receiving child did not exit"), <-done)
	}
}

// receiverMain is the body of a receiver child.
func receiverMain(ctx context.Context, h *harness, caseName, resource string) error {
	var tc *transportCase
	for _, c := range transportCases() {
		if c.name == caseName {
			tc = &c
		}
	}
	if tc == nil {
		return fmt.Errorf("no transport case %q", caseName)
	}
	cfg := tc.cfg
	cfg.resource = resource
	bob, err := login(ctx, h.env, h.env.Bob, cfg, h.log)
	if err != nil {
		return err
	}
	defer bob.close()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	say("ready")
	var wg sync.WaitGroup
	defer wg.Wait()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "expect" {
			return fmt.Errorf("bad line %q", sc.Text())
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return fmt.Errorf("bad line %q", sc.Text())
		}
		name := f[1]
		wait := bob.expect(name, size, f[3], f[4] == "1")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := wait(ctx); err != nil {
				say("result %s error %s", name, strings.ReplaceAll(err.Error(), "\n", " "))
				return
			}
			say("result %s ok", name)
		}()
	}
	return sc.Err()
}
