package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/internal/testserver"
)

var prosody prosodytest.Lazy

// binDir holds the jinglectl binary built once for the end-to-end tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jinglectl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// OMEMO state of the commands (agent.DefaultOMEMOStateFile) goes to a
	// temporary directory, never to the user's.
	os.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	os.Exit(testserver.MainNoLeaks(m, &prosody, testserver.Cleanup(func() error {
		stopPrivacyServers()
		_ = os.RemoveAll(dir)
		return nil
	})))
}

var (
	buildOnce sync.Once
	buildErr  error
)

// binary builds jinglectl (once) and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "jinglectl")
	buildOnce.Do(func() {
		args := []string{"build", "-o", bin}
		if raceEnabled && os.Getenv("JINGLEKIT_E2E_RACE") == "1" {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// account is a Prosody user for the tests.
type account struct {
	jid, password string
}

func newAccount(t *testing.T, srv *prosodytest.Server, prefix string) account {
	j, pw := srv.NewUser(t, prefix)
	return account{j, pw}
}

// contactPair registers alice and bob on srv, mutual roster contacts.
func contactPair(t *testing.T, srv *prosodytest.Server) (alice, bob account) {
	t.Helper()
	a, b := testserver.ContactPair(t, srv)
	return account{a.JID, a.Password}, account{b.JID, b.Password}
}

// subscribe makes a and each of others mutual roster contacts on srv.
func subscribe(t *testing.T, srv *prosodytest.Server, a account, others ...account) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, b := range others {
		if err := srv.MutualSubscribe(ctx, a.jid, b.jid); err != nil {
			t.Fatal(err)
		}
	}
}

// cli runs jinglectl.
type cli struct {
	t   *testing.T
	bin string
	srv *prosodytest.Server
	env []string
}

func newCLI(t *testing.T, srv *prosodytest.Server) *cli {
	return &cli{t: t, bin: binary(t), srv: srv}
}

// accountArgs returns the flags to log in as a against the test server.
func (c *cli) accountArgs(a account, resource string) []string {
	j := a.jid
	if resource != "" {
		j += "/" + resource
	}
	return []string{"--jid", j, "--server", c.srv.C2SAddr, "--ca-file", c.srv.CAFile}
}

// result of a command.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// command prepares jinglectl with the password of a in the environment.
func (c *cli) command(ctx context.Context, a account, args ...string) *exec.Cmd {
	cmd := testproc.CommandContext(ctx, c.bin, args...) // dies with the test binary
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+c.t.TempDir(), "XDG_RUNTIME_DIR="+shortTempDir(c.t))
	if a.password != "" {
		cmd.Env = append(cmd.Env, "JINGLECTL_PASSWORD="+a.password)
	}
	cmd.Env = append(cmd.Env, c.env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs jinglectl to completion (bounded by timeout).
func (c *cli) run(timeout time.Duration, a account, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.command(ctx, a, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code, err := testproc.ExitCode(testproc.Run(cmd))
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		c.t.Fatalf("jinglectl %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		c.t.Fatalf("jinglectl %s: timed out after %s\n%s", strings.Join(args, " "), timeout, r)
	}
	return r
}

// background is a jinglectl running in the background.
type background struct {
	cmd            *exec.Cmd
	stdout, stderr *testproc.Output
	done           chan struct{}
	err            error
	cancel         context.CancelFunc
}

// start runs jinglectl in the background; it is killed at the end of the
// test if still running.
func (c *cli) start(a account, args ...string) *background {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := c.command(ctx, a, args...)
	bg := &background{cmd: cmd, stdout: &testproc.Output{}, stderr: &testproc.Output{}, done: make(chan struct{}), cancel: cancel}
	cmd.Stdout, cmd.Stderr = bg.stdout, bg.stderr
	proc, err := testproc.Start(cmd)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	go func() {
		bg.err = proc.Wait()
		close(bg.done)
	}()
	c.t.Cleanup(func() {
		cancel()
		<-bg.done
		if c.t.Failed() {
			c.t.Logf("background jinglectl %s:\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), bg.stdout, bg.stderr)
		}
	})
	return bg
}

// wait waits for the command and returns its result.
func (b *background) wait(t *testing.T, timeout time.Duration) result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		b.cancel()
		<-b.done
		t.Fatalf("background jinglectl did not finish within %s\nstdout:\n%s\nstderr:\n%s", timeout, b.stdout, b.stderr)
	}
	code, err := testproc.ExitCode(b.err)
	if err != nil {
		t.Fatal(err)
	}
	r := result{code: code, stdout: b.stdout.String(), stderr: b.stderr.String()}
	return r
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// randomFile writes n random bytes to dir/name.
func randomFile(t *testing.T, dir, name string, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameContent fails t unless the files are identical.
func sameContent(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ (%d and %d bytes)", a, b, len(x), len(y))
	}
}

// shortTempDir is a temporary directory with a short path (Unix socket
// paths are limited to ~100 bytes).
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "jk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
