package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// agentSetup is an agent's configuration for the tests.
type agentSetup struct {
	acct   account
	config string
	socket string
	dir    string // receive directory ("" none)
	state  string
}

// writeAgentConfig writes an agent's configuration file.
func writeAgentConfig(t *testing.T, srv *prosodytest.Server, a account, receive bool, extra string, agentExtra ...string) agentSetup {
	t.Helper()
	base := shortTempDir(t)
	s := agentSetup{acct: a, config: filepath.Join(base, "agent.toml"), socket: filepath.Join(base, "run", "agent.sock"),
		state: filepath.Join(base, "state.json")}
	var b strings.Builder
	fmt.Fprintf(&b, "jid = %q\nserver = %q\nca_file = %q\n\n", a.jid+"/agent", srv.C2SAddr, srv.CAFile)
	fmt.Fprintf(&b, "[transfer]\nallow_loopback = true\n%s\n", extra)
	if receive {
		s.dir = filepath.Join(base, "in")
		if err := os.Mkdir(s.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "[receive]\ndir = %q\n\n", s.dir)
	}
	fmt.Fprintf(&b, "[agent]\nsocket = %q\nstate_file = %q\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\nmax_attempts = 50\nlog_level = \"debug\"\n", s.socket, s.state)
	for _, l := range agentExtra {
		fmt.Fprintln(&b, l)
	}
	if err := os.WriteFile(s.config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// startAgent runs jinglectl agent and waits until it is logged in.
func (c *cli) startAgent(t *testing.T, s agentSetup) *background {
	t.Helper()
	bg := c.start(s.acct, "agent", "--config", s.config)
	waitFor(t, 30*time.Second, "agent "+s.acct.jid+" logged in", func() bool {
		st, ok := c.agentStatus(s)
		return ok && st.Connected
	})
	return bg
}

// agentStatus asks an agent for its status.
func (c *cli) agentStatus(s agentSetup) (agent.Status, bool) {
	r := c.run(15*time.Second, account{}, "status", "--json", "--socket", s.socket)
	if r.code != 0 {
		return agent.Status{}, false
	}
	var st agent.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		c.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st, true
}

// peerVisible waits until the sender's agent would see the receiver:
// both logged in, and the receiver's presence delivered.
func waitBothUp(t *testing.T, c *cli, a, b agentSetup) {
	t.Helper()
	for _, s := range []agentSetup{a, b} {
		waitFor(t, 30*time.Second, "agent "+s.acct.jid+" connected", func() bool {
			st, ok := c.agentStatus(s)
			return ok && st.Connected
		})
	}
}

// partFiles lists the .part files of dir with their sizes.
func partFiles(dir string) map[string]int64 {
	out := map[string]int64{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".part") {
			if fi, err := e.Info(); err == nil {
				out[e.Name()] = fi.Size()
			}
		}
	}
	return out
}

// TestAgentQueueSurvivesRestart queues 50 files through alice's agent's
// control socket for bob's agent, restarts Prosody while a large file is
// being sent, and checks that both agents log in again, that the
// interrupted file is resumed by range, and that every file arrives
// verified.
func TestAgentQueueSurvivesRestart(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	// 1 MiB/s: the large files take a second or two, the small ones a few
	// milliseconds.
	as := writeAgentConfig(t, srv, alice, false, "limit_rate = \"1M\"", "concurrency = 4")
	bs := writeAgentConfig(t, srv, bob, true, "")
	c.startAgent(t, as)
	c.startAgent(t, bs)
	waitBothUp(t, c, as, bs)

	src := t.TempDir()
	var files []string
	for i := range 50 {
		n := 8<<10 + i*512
		if i == 10 || i == 30 {
			n = 2 << 20 // in flight when Prosody restarts
		}
		files = append(files, randomFile(t, src, fmt.Sprintf("file-%02d.bin", i), n))
	}
	send := c.start(account{}, append([]string{"send", "--agent=" + as.socket, "--json", bob.jid}, files...)...)

	// Restart once the first large file is half way.
	waitFor(t, 60*time.Second, "file-10 half received", func() bool {
		return partFiles(bs.dir)["file-10.bin.part"] > 512<<10
	})
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Log("prosody restarted")

	r := send.wait(t, 120*time.Second)
	if r.code != 0 {
		t.Fatalf("send --agent: %s", r)
	}
	evs := parseEvents(t, r.stdout)
	done, resumed, retries := map[string]bool{}, 0, 0
	for _, e := range evs {
		switch e.Event {
		case agent.EventDone:
			done[e.ID] = true
			if e.Offset > 0 {
				resumed++
			}
		case agent.EventRetry:
			retries++
		case agent.EventError:
			t.Errorf("error event: %+v", e)
		}
	}
	if len(done) != 50 {
		t.Errorf("%d files done, want 50", len(done))
	}
	if retries == 0 {
		t.Errorf("no retry after the restart")
	}
	if resumed == 0 {
		t.Errorf("no file was resumed by range")
	}
	for _, f := range files {
		sameContent(t, f, filepath.Join(bs.dir, filepath.Base(f)))
	}
	if p := partFiles(bs.dir); len(p) != 0 {
		t.Errorf(".part files left: %v", p)
	}
	for _, s := range []agentSetup{as, bs} {
		st, ok := c.agentStatus(s)
		if !ok || !st.Connected || st.Reconnects < 1 {
			t.Errorf("%s: status %+v", s.acct.jid, st)
		}
	}
	// A file that arrived just before the restart, without alice learning
	// it, is sent again; bob keeps one copy.
	if ents, _ := os.ReadDir(bs.dir); len(ents) != 50 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("bob's directory holds %d entries, want 50: %v", len(ents), names)
	}
	received := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(received) != 50 && time.Now().Before(deadline) {
		// A file verified just as the stream went down is reported once
		// its session has noticed.
		st, _ := c.agentStatus(bs)
		for _, tr := range st.Transfers {
			if tr.Direction == agent.Receive && tr.State == agent.StateDone {
				received[tr.File] = true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(received) != 50 {
		t.Errorf("bob's agent reports %d distinct received files, want 50", len(received))
	}
}

// TestAgentSIGTERM stops the receiving agent, then the sending agent,
// with SIGTERM in the middle of a transfer: each exits 0, the receiver
// keeps only NAME.part (nothing complete-looking), and once restarted the
// agents finish the file by resuming it.
func TestAgentSIGTERM(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	as := writeAgentConfig(t, srv, alice, false, "limit_rate = \"1M\"")
	bs := writeAgentConfig(t, srv, bob, true, "")
	aliceAgent := c.startAgent(t, as)
	bobAgent := c.startAgent(t, bs)
	waitBothUp(t, c, as, bs)

	f := randomFile(t, t.TempDir(), "big.bin", 2<<20)
	r := c.run(15*time.Second, account{}, "send", "--agent="+as.socket, "--detach", bob.jid, f)
	if r.code != 0 || strings.TrimSpace(r.stdout) == "" {
		t.Fatalf("send --detach: %s", r)
	}
	id := strings.TrimSpace(r.stdout)
	final := filepath.Join(bs.dir, "big.bin")

	// 1. SIGTERM to the receiver.
	waitFor(t, 30*time.Second, "big.bin a quarter received", func() bool { return partFiles(bs.dir)["big.bin.part"] > 512<<10 })
	if err := bobAgent.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if br := bobAgent.wait(t, 20*time.Second); br.code != 0 {
		t.Fatalf("bob's agent after SIGTERM: %s", br)
	}
	if _, err := os.Stat(final); err == nil {
		t.Fatal("big.bin exists after the receiver was stopped mid-transfer")
	}
	part1 := partFiles(bs.dir)["big.bin.part"]
	if part1 == 0 || part1 >= 2<<20 {
		t.Fatalf("big.bin.part has %d bytes after SIGTERM", part1)
	}
	if recs, err := os.ReadDir(filepath.Join(bs.dir, filetransfer.StateDirName)); err != nil || len(recs) != 1 {
		t.Errorf("no resume record: %v", err)
	}

	// 2. The receiver comes back; the sender retries and resumes; then
	// SIGTERM to the sender in the middle.
	bobAgent = c.startAgent(t, bs)
	waitFor(t, 60*time.Second, "big.bin resumed", func() bool { return partFiles(bs.dir)["big.bin.part"] > part1+256<<10 })
	if err := aliceAgent.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ar := aliceAgent.wait(t, 20*time.Second); ar.code != 0 {
		t.Fatalf("alice's agent after SIGTERM: %s", ar)
	}
	time.Sleep(500 * time.Millisecond) // the receiver handles the session-terminate
	if _, err := os.Stat(final); err == nil {
		t.Fatal("big.bin exists after the sender was stopped mid-transfer")
	}
	part2 := partFiles(bs.dir)["big.bin.part"]
	if part2 <= part1 || part2 >= 2<<20 {
		t.Fatalf("big.bin.part has %d bytes after the sender stopped (had %d)", part2, part1)
	}
	state, err := os.ReadFile(as.state)
	if err != nil || !strings.Contains(string(state), id) {
		t.Fatalf("alice's state file does not keep %s queued: %v\n%s", id, err, state)
	}

	// 3. The sender comes back and finishes the file from its state file.
	c.startAgent(t, as)
	waitFor(t, 60*time.Second, "big.bin complete", func() bool {
		_, err := os.Stat(final)
		return err == nil
	})
	sameContent(t, f, final)
	st, _ := c.agentStatus(as)
	var tr *agent.Transfer
	for i := range st.Transfers {
		if st.Transfers[i].ID == id {
			tr = &st.Transfers[i]
		}
	}
	waitFor(t, 10*time.Second, "the sender's verdict", func() bool {
		st, _ = c.agentStatus(as)
		for i := range st.Transfers {
			if st.Transfers[i].ID == id {
				tr = &st.Transfers[i]
			}
		}
		return tr != nil && tr.State == agent.StateDone
	})
	if tr.Offset < part2 {
		t.Errorf("the last attempt started at %d, want a resume from at least %d", tr.Offset, part2)
	}
	if p := partFiles(bs.dir); len(p) != 0 {
		t.Errorf(".part files left: %v", p)
	}
}
