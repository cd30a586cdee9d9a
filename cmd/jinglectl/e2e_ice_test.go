package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
)

// TestSendICE sends 1 MiB from alice to bob over ICE between two jinglectl
// processes (host candidates on loopback; Prosody announces no STUN/TURN
// server), with --transport ice forced on the sender and the receiver
// taking what is offered.
func TestSendICE(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	src, dst := t.TempDir(), t.TempDir()
	f := randomFile(t, src, "one.bin", 1<<20)
	recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "recv"), "--dir", dst, "--once", "--json", "--allow-loopback")...)...)
	waitFor(t, 20*time.Second, "receiver online", func() bool { return recvReady(t, c, alice, bob) })
	r := c.run(90*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--json", "--allow-loopback", "--transport", "ice", bob.jid, f)...)...)
	if r.code != 0 {
		t.Fatalf("send: %s", r)
	}
	evs := parseEvents(t, r.stdout)
	checkSendEvents(t, evs, 1, agent.TransportICE)
	noTransportFailure(t, evs)
	rr := recv.wait(t, 30*time.Second)
	if rr.code != 0 {
		t.Fatalf("receive: %s", rr)
	}
	checkReceiveEvents(t, parseEvents(t, rr.stdout), 1, agent.TransportICE)
	sameContent(t, f, filepath.Join(dst, "one.bin"))
}

// TestSendAutoWithoutS5B: with --transport auto and SOCKS5 made impossible
// on both sides (no direct candidate, no proxy), the session falls back by
// transport-replace along the documented order, SOCKS5 → ICE → IBB, and
// the file travels over ICE, the next in line. --no-direct makes ICE
// relay-only, so the server announces a TURN server (XEP-0215).
func TestSendAutoWithoutS5B(t *testing.T) {
	srv := privacyServer(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	src, dst := t.TempDir(), t.TempDir()
	f := randomFile(t, src, "two.bin", 300<<10)
	noS5B := []string{"--no-direct", "--no-proxy", "--allow-loopback"}
	recv := c.start(bob, append([]string{"receive"}, append(append(c.accountArgs(bob, "recv"), noS5B...), "--dir", dst, "--once", "--json")...)...)
	waitFor(t, 20*time.Second, "receiver online", func() bool { return recvReady(t, c, alice, bob) })
	r := c.run(90*time.Second, alice, append([]string{"send"}, append(append(c.accountArgs(alice, ""), noS5B...), "--json", "--transport", "auto", bob.jid, f)...)...)
	if r.code != 0 {
		t.Fatalf("send: %s", r)
	}
	evs := parseEvents(t, r.stdout)
	checkSendEvents(t, evs, 1, agent.TransportICE)
	var failed []string
	for _, e := range evs {
		if e.Event == agent.EventTransportFailed {
			failed = append(failed, e.Transport)
		}
	}
	if len(failed) != 1 || failed[0] != agent.TransportS5B {
		t.Errorf("transports failed before ICE: %v, want [s5b]", failed)
	}
	rr := recv.wait(t, 30*time.Second)
	if rr.code != 0 {
		t.Fatalf("receive: %s", rr)
	}
	checkReceiveEvents(t, parseEvents(t, rr.stdout), 1, agent.TransportICE)
	sameContent(t, f, filepath.Join(dst, "two.bin"))
}

func noTransportFailure(t *testing.T, evs []agent.Event) {
	t.Helper()
	for _, e := range evs {
		if e.Event == agent.EventTransportFailed {
			t.Errorf("transport failed: %+v", e)
		}
	}
}
