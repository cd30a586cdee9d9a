package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/internal/testserver"
)

type runningAgent struct {
	a    *Agent
	cfg  Config
	done chan error
	stop context.CancelFunc
}

func startTestAgent(t *testing.T, cfg Config) *runningAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAgent{a: New(cfg, slog.New(slog.DiscardHandler)), cfg: cfg, done: make(chan error, 1), stop: cancel}
	go func() { ra.done <- ra.a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ra.done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !ra.a.status().Connected {
		select {
		case err := <-ra.done:
			t.Fatalf("agent stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("agent did not log in")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ra
}

// agentPair registers alice and bob on srv, mutual roster contacts, and
// returns the configurations of their agents: common, plus each one's
// account (resource "agent") and control socket in base, a new short
// directory; bob receives into base/in.
func agentPair(t *testing.T, srv testserver.Accounts, common Config) (acfg, bcfg Config, base string) {
	t.Helper()
	alice, bob := testserver.ContactPair(t, srv)
	base = shortDir(t)
	in := filepath.Join(base, "in")
	if err := os.Mkdir(in, 0o700); err != nil {
		t.Fatal(err)
	}
	acfg, bcfg = common, common
	acfg.JID, acfg.Password, acfg.Socket = alice.JID+"/agent", alice.Password, filepath.Join(base, "a.sock")
	bcfg.JID, bcfg.Password, bcfg.Socket, bcfg.Dir = bob.JID+"/agent", bob.Password, filepath.Join(base, "b.sock"), in
	return acfg, bcfg, base
}

// TestAgentInProcess runs two agents in the test process (so the race
// detector sees them): alice queues files for bob through the control
// socket, Prosody restarts during the large one, and every file arrives.
func TestAgentInProcess(t *testing.T) {
	srv := prosody.Get(t)
	acfg, bcfg, _ := agentPair(t, srv, Config{Servers: []string{srv.C2SAddr}, CAFile: srv.CAFile, AllowLoopback: true,
		ReconnectMin: 200 * time.Millisecond, ReconnectMax: time.Second, MaxAttempts: 50})
	acfg.LimitRate = 512 << 10
	bj, in := mustJID(t, bcfg.JID).Bare().String(), bcfg.Dir
	alice := startTestAgent(t, acfg)
	bob := startTestAgent(t, bcfg)

	src := t.TempDir()
	var files []string
	for i := range 6 {
		n := 4<<10 + i
		if i == 2 {
			n = 1 << 20
		}
		b := make([]byte, n)
		rand.Read(b)
		p := filepath.Join(src, fmt.Sprintf("f%d", i))
		os.WriteFile(p, b, 0o600)
		files = append(files, p)
	}
	c, err := DialControl(t.Context(), acfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(Request{Op: OpSend, Peer: bj, Files: files, Wait: true}); err != nil {
		t.Fatal(err)
	}
	first, err := c.Next()
	if err != nil || len(first.IDs) != 6 {
		t.Fatalf("queued: %+v, %v", first, err)
	}
	restarted := false
	done := map[string]Event{}
	retries := 0
	for len(done) < 6 {
		r, err := c.Next()
		if err != nil {
			t.Fatalf("after %d files: %v", len(done), err)
		}
		e := r.Event
		if !restarted && e.ID == first.IDs[2] && e.Event == EventProgress && e.Bytes > 256<<10 {
			restarted = true
			go func() {
				if err := srv.Restart(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		switch e.Event {
		case EventRetry:
			retries++
		case EventDone:
			done[e.ID] = e
		case EventError:
			t.Fatalf("error: %+v", e)
		}
	}
	if !restarted || retries == 0 {
		t.Errorf("restarted %v, %d retries", restarted, retries)
	}
	if e := done[first.IDs[2]]; e.Offset == 0 {
		t.Errorf("the large file was not resumed: %+v", e)
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(in, filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v (%d bytes, want %d)", f, err, len(got), len(want))
		}
	}
	for _, ra := range []*runningAgent{alice, bob} {
		if st := ra.a.status(); st.Reconnects < 1 || !st.Connected {
			t.Errorf("%s: %+v", ra.cfg.JID, st)
		}
		ra.stop()
		if err := <-ra.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		ra.done <- nil // for the cleanup
	}
}

// TestAgentFatalLogin: a wrong password at start-up stops the agent with
// the authentication error instead of retrying forever.
func TestAgentFatalLogin(t *testing.T) {
	srv := prosody.Get(t)
	j, _ := srv.NewUser(t, "alice")
	a := New(Config{JID: j, Password: "wrong", Servers: []string{srv.C2SAddr}, CAFile: srv.CAFile, Socket: filepath.Join(shortDir(t), "s")}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.Run(ctx)
	if Outcome(err) != OutcomeAuth {
		t.Errorf("Run = %v, want an authentication error", err)
	}
}
