package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
)

// parseEvents parses JSON lines output.
func parseEvents(t *testing.T, out string) []agent.Event {
	t.Helper()
	var evs []agent.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e agent.Event
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %q is not an event: %v", sc.Text(), err)
		}
		if e.Event == "" || e.Time.IsZero() {
			t.Fatalf("line %q lacks event or time", sc.Text())
		}
		evs = append(evs, e)
	}
	return evs
}

// TestSendReceive sends two files from alice to bob (mutual roster
// contacts, bare JID recipient) with --json on both sides, for each
// transport.
func TestSendReceive(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	for _, tc := range []struct {
		transport string
		want      string
		route     string
	}{
		{"auto", "s5b", agent.RouteS5BDirect},
		{"s5b", "s5b", agent.RouteS5BDirect},
		{"ibb", "ibb", agent.RouteIBB},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			alice, bob := contactPair(t, srv)
			src, dst := t.TempDir(), t.TempDir()
			f1 := randomFile(t, src, "one.bin", 300<<10)
			f2 := randomFile(t, src, "two words.txt", 1000)
			recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "recv"), "--dir", dst, "--once", "--json", "--allow-loopback")...)...)
			waitFor(t, 20*time.Second, "receiver online", func() bool { return recvReady(t, c, alice, bob) })
			r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--json", "--allow-loopback", "--transport", tc.transport, bob.jid, f1, f2)...)...)
			if r.code != 0 {
				t.Fatalf("send: %s", r)
			}
			evs := parseEvents(t, r.stdout)
			checkSendEvents(t, evs, 2, tc.want)
			rr := recv.wait(t, 30*time.Second)
			if rr.code != 0 {
				t.Fatalf("receive: %s", rr)
			}
			revs := parseEvents(t, rr.stdout)
			checkReceiveEvents(t, revs, 2, tc.want)
			for who, evs := range map[string][]agent.Event{"send": evs, "receive": revs} {
				if got := routes(evs); len(got) != 2 || got[0] != tc.route || got[1] != tc.route {
					t.Errorf("%s: routes %q, want %q", who, got, tc.route)
				}
			}
			sameContent(t, f1, filepath.Join(dst, "one.bin"))
			sameContent(t, f2, filepath.Join(dst, "two words.txt"))
			ents, _ := os.ReadDir(dst)
			if len(ents) != 2 {
				t.Errorf("receive dir holds %d entries, want 2", len(ents))
			}
		})
	}
}

// recvReady reports whether bob's receiver is visible to alice: disco
// of bob's bare JID lists a resource with file transfer.
func recvReady(t *testing.T, c *cli, alice, bob account) bool {
	r := c.run(30*time.Second, alice, append([]string{"disco"}, append(c.accountArgs(alice, ""), "--json", "--presence-wait", "2s", bob.jid)...)...)
	return r.code == 0 && strings.Contains(r.stdout, `"file_transfer":true`)
}

func checkSendEvents(t *testing.T, evs []agent.Event, files int, transport string) {
	t.Helper()
	seen := map[string]map[string]int{}
	for _, e := range evs {
		if e.ID == "" {
			t.Errorf("event without id: %+v", e)
			continue
		}
		if seen[e.ID] == nil {
			seen[e.ID] = map[string]int{}
			if e.Event != agent.EventOffered {
				t.Errorf("first event of %s is %q, want offered", e.ID, e.Event)
			}
		}
		seen[e.ID][e.Event]++
		if e.Direction != agent.Send {
			t.Errorf("direction %q", e.Direction)
		}
		if e.Event == agent.EventTransport && e.Transport != transport {
			t.Errorf("transport %q, want %q", e.Transport, transport)
		}
		if e.Event == agent.EventDone && (e.Outcome != agent.OutcomeOK || !e.Verified || e.Hash == nil || e.Hash.Algo != "sha-256" || e.Bytes != e.Size) {
			t.Errorf("done event %+v", e)
		}
	}
	if len(seen) != files {
		t.Fatalf("events for %d files, want %d: %+v", len(seen), files, evs)
	}
	for id, m := range seen {
		for _, ev := range []string{agent.EventOffered, agent.EventAccepted, agent.EventTransport, agent.EventProgress, agent.EventChecksum, agent.EventVerified, agent.EventDone} {
			if m[ev] == 0 {
				t.Errorf("file %s: no %q event (%v)", id, ev, m)
			}
		}
		if m[agent.EventError] != 0 || m[agent.EventDone] != 1 {
			t.Errorf("file %s: %v", id, m)
		}
	}
}

func checkReceiveEvents(t *testing.T, evs []agent.Event, files int, transport string) {
	t.Helper()
	done := 0
	for _, e := range evs {
		if e.Direction != agent.Receive {
			t.Errorf("direction %q", e.Direction)
		}
		if e.Event == agent.EventTransport && e.Transport != transport {
			t.Errorf("transport %q, want %q", e.Transport, transport)
		}
		if e.Event == agent.EventDone {
			done++
			if !e.Verified || e.Path == "" || e.Outcome != agent.OutcomeOK {
				t.Errorf("done event %+v", e)
			}
		}
		if e.Event == agent.EventError {
			t.Errorf("error event %+v", e)
		}
	}
	if done != files {
		t.Errorf("%d done events, want %d", done, files)
	}
}

// TestSendManyFiles (issue 13): one `jinglectl send` of 200 files to a
// receiver whose limit is 16 files per session delivers all 200, verified,
// in several sessions.
func TestSendManyFiles(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	const n = 200
	src, dst := t.TempDir(), t.TempDir()
	files := make([]string, n)
	for i := range files {
		files[i] = randomFile(t, src, fmt.Sprintf("f%03d.bin", i), 100+i)
	}
	recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "recv"), "--dir", dst, "--json", "--allow-loopback")...)...)
	waitFor(t, 20*time.Second, "receiver online", func() bool { return recvReady(t, c, alice, bob) })
	args := append(c.accountArgs(alice, ""), "--json", "--allow-loopback", "--transport", "ibb", bob.jid+"/recv")
	r := c.run(300*time.Second, alice, append(append([]string{"send"}, args...), files...)...)
	if r.code != 0 {
		t.Fatalf("send: exit %d\n%s", r.code, r.stderr)
	}
	done, sids := 0, map[string]bool{}
	for _, e := range parseEvents(t, r.stdout) {
		if e.Event == agent.EventDone {
			done++
			sids[e.SID] = true
		}
	}
	if done != n || len(sids) < n/16 {
		t.Fatalf("send reports %d files done in %d sessions, want %d in at least %d", done, len(sids), n, n/16)
	}
	for _, f := range files {
		sameContent(t, f, filepath.Join(dst, filepath.Base(f)))
	}
	ents, _ := os.ReadDir(dst)
	if len(ents) != n {
		t.Errorf("receive dir holds %d entries, want %d", len(ents), n)
	}
	verified := 0
	waitFor(t, 20*time.Second, "receiver's events", func() bool {
		verified = 0
		for _, line := range strings.Split(recv.stdout.String(), "\n") {
			if strings.Contains(line, `"event":"done"`) && strings.Contains(line, `"verified":true`) {
				verified++
			}
		}
		return verified == n
	})
}

// TestKilledSenderResumes (issue 13, D4): a sender killed (-9) in the middle
// of an IBB transfer goes unavailable; the receiver ends its session at
// once and releases the .part, and a resend right away resumes it.
func TestKilledSenderResumes(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	src, dst := t.TempDir(), t.TempDir()
	const size = 2 << 20
	f := randomFile(t, src, "big.bin", size)
	recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "recv"), "--dir", dst, "--json", "--allow-loopback")...)...)
	waitFor(t, 20*time.Second, "receiver online", func() bool { return recvReady(t, c, alice, bob) })
	to := bob.jid + "/recv"
	part := filepath.Join(dst, "big.bin.part")
	slow := c.start(alice, append([]string{"send"}, append(c.accountArgs(alice, "s1"), "--json", "--transport", "ibb", "--limit-rate", "200K", to, f)...)...)
	var have int64
	waitFor(t, 30*time.Second, "half the file on the receiver's side", func() bool {
		fi, err := os.Stat(part)
		if err == nil {
			have = fi.Size()
		}
		return have >= 300<<10
	})
	if err := slow.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-slow.done
	// The resend comes at once: the receiver learns from the presence, not
	// from an idle timeout, that the first sender is gone.
	r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, "s2"), "--json", "--transport", "ibb", to, f)...)...)
	if r.code != 0 {
		t.Fatalf("resend: %s", r)
	}
	var resumedAt int64 = -1
	for _, e := range parseEvents(t, r.stdout) {
		if e.Event == agent.EventDone {
			resumedAt = e.Offset
		}
	}
	if resumedAt < 300<<10 || resumedAt > size {
		t.Fatalf("the resend started at %d, want a resume from the .part (at least %d bytes were there)", resumedAt, 300<<10)
	}
	sameContent(t, f, filepath.Join(dst, "big.bin"))
	ents, _ := os.ReadDir(dst)
	if len(ents) != 1 {
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("receive dir holds %v, want only big.bin", names)
	}
	_ = recv
}
