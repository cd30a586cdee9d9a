package agent

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/omemo"
)

// agentOMEMO returns a running agent's OMEMO state (nil when it has none).
func agentOMEMO(ra *runningAgent) *omemo.Manager {
	ra.a.mu.Lock()
	defer ra.a.mu.Unlock()
	if ra.a.conn == nil {
		return nil
	}
	return ra.a.conn.OMEMO()
}

// stopAgent stops a running agent and waits for Run to return.
func stopAgent(t *testing.T, ra *runningAgent) {
	t.Helper()
	ra.stop()
	select {
	case err := <-ra.done:
		if err != nil {
			t.Errorf("%s: Run: %v", ra.cfg.JID, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop", ra.cfg.JID)
	}
	ra.done <- nil // for the cleanup
}

// sendEncrypted sends one file through the agent's control socket with
// --encrypt always and returns its final event.
func sendEncrypted(t *testing.T, ra *runningAgent, peer, file string) Event {
	t.Helper()
	c, err := DialControl(t.Context(), ra.cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(Request{Op: OpSend, Peer: peer, Files: []string{file}, Encrypt: EncryptAlways, Wait: true}); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := c.Next()
		if err != nil {
			t.Fatalf("sending %s: %v", file, err)
		}
		if r.Event.Terminal() {
			return r.Event
		}
	}
}

// omemoStats polls an agent's OMEMO stats (those of its current
// connection) until ok accepts them or 20 s pass.
func omemoStats(t *testing.T, ra *runningAgent, what string, ok func(omemo.Stats) bool) omemo.Stats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st omemo.Stats
		if om := agentOMEMO(ra); om != nil {
			st = om.Stats()
			if ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: OMEMO stats %+v", ra.cfg.JID, what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOMEMOSurvivesRestart (issue 15): alice's agent sends bob's agent an
// encrypted file; both agents stop completely and start again from their
// state directories; a second encrypted file needs no new key exchange:
// the same device ids and identity keys, no bundle fetched, no session
// built, no pre-key message sent or received, no pre-key used. The first
// transfer's pre-key message was acknowledged (omemo.Acknowledge): that is
// why the second one is a plain Signal message. The OMEMO state files are
// mode 0600.
func TestOMEMOSurvivesRestart(t *testing.T) {
	srv := prosodyPEP.Get(t)
	acfg, bcfg, base := agentPair(t, srv, Config{Servers: []string{srv.C2SAddr}, CAFile: srv.CAFile, AllowLoopback: true,
		ReconnectMin: 200 * time.Millisecond, ReconnectMax: time.Second, MaxAttempts: 3})
	for _, d := range []string{filepath.Join(base, "astate"), filepath.Join(base, "bstate")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	acfg.StateFile = filepath.Join(base, "astate", "agent.json")
	bcfg.StateFile = filepath.Join(base, "bstate", "agent.json")
	bj, in := mustJID(t, bcfg.JID).Bare().String(), bcfg.Dir

	src := t.TempDir()
	var files []string
	for _, name := range []string{"first.bin", "second.bin"} {
		b := make([]byte, 300<<10)
		rand.Read(b)
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}

	type device struct {
		id          uint32
		fingerprint string
	}
	devices := map[string]device{}
	for run, file := range files {
		alice, bob := startTestAgent(t, acfg), startTestAgent(t, bcfg)
		for _, ra := range []*runningAgent{alice, bob} {
			om := agentOMEMO(ra)
			if om == nil {
				t.Fatalf("run %d: %s has no OMEMO", run, ra.cfg.JID)
			}
			d := device{om.DeviceID(), om.Fingerprint()}
			if old, ok := devices[ra.cfg.JID]; ok && old != d {
				t.Fatalf("%s's device changed across the restart: %+v → %+v", ra.cfg.JID, old, d)
			}
			devices[ra.cfg.JID] = d
		}
		e := sendEncrypted(t, alice, bj, file)
		if e.Event != EventDone || !e.Encrypted {
			t.Fatalf("run %d: %+v, want an encrypted done", run, e)
		}
		if run == 0 {
			// The key exchange, and its acknowledgement.
			bst := omemoStats(t, bob, "first transfer", func(s omemo.Stats) bool { return s.AcksSent == 1 })
			if bst.PreKeyMessagesReceived != 1 || bst.PreKeysUsed != 1 {
				t.Fatalf("bob after the first transfer: %+v, want one pre-key message received and one pre-key used", bst)
			}
			ast := omemoStats(t, alice, "first transfer", func(s omemo.Stats) bool { return s.AcksReceived == 1 })
			if ast.BundleFetches != 1 || ast.SessionsBuilt != 1 || ast.PreKeyMessagesSent != 1 {
				t.Fatalf("alice after the first transfer: %+v, want one bundle fetch, one session, one pre-key message", ast)
			}
		} else {
			// The second run: nothing of the above.
			for _, ra := range []*runningAgent{alice, bob} {
				st := agentOMEMO(ra).Stats()
				if st.BundleFetches != 0 || st.SessionsBuilt != 0 || st.PreKeyMessagesSent != 0 || st.PreKeyMessagesReceived != 0 ||
					st.PreKeysUsed != 0 || st.AcksSent != 0 || st.BundlePublishes != 1 {
					t.Errorf("%s after the restart: %+v, want no key exchange (only the start-up bundle publish)", ra.cfg.JID, st)
				}
			}
			// The metrics say the same.
			if g := alice.a.gauges().omemo; g.PreKeyMessagesSent != 0 || g.BundleFetches != 0 {
				t.Errorf("alice's metrics after the restart: %+v", g)
			}
		}
		for _, ra := range []*runningAgent{alice, bob} {
			path := DefaultOMEMOStateFile(ra.cfg, mustJID(t, ra.cfg.JID))
			if filepath.Dir(path) != filepath.Dir(ra.cfg.StateFile) {
				t.Fatalf("OMEMO state %s is not in the agent's state directory", path)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
			}
			stopAgent(t, ra)
		}
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(in, filepath.Base(f)))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %v (%d bytes, want %d)", f, err, len(got), len(want))
		}
	}
}

func mustJID(t *testing.T, s string) jid.JID {
	t.Helper()
	j, err := jid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
