package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
)

// startPEPProsody starts a Prosody with mod_pep (OMEMO device lists and
// bundles) for this test only: the shared one has no PEP, so the other
// tests run unencrypted.
func startPEPProsody(t *testing.T) *prosodytest.Server {
	t.Helper()
	if _, err := os.Stat("/usr/bin/prosody"); err != nil && os.Getenv("JINGLEKIT_REQUIRE_PROSODY") != "1" {
		t.Skip("no prosody")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := prosodytest.Start(ctx, prosodytest.Options{Modules: []string{"pep"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// TestSendEncrypted: on a server with PEP, send --encrypt always sends
// end-to-end encrypted (JET-OMEMO), the receiver says so in JSON and in
// its text line, disco shows the OMEMO devices, and trust list shows the
// peer's fingerprint. To an account without OMEMO, --encrypt always exits
// 6 and --encrypt auto sends in the clear.
func TestSendEncrypted(t *testing.T) {
	srv := startPEPProsody(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	state := t.TempDir()
	c.env = append(c.env, "XDG_STATE_HOME="+state)
	src, dst := t.TempDir(), t.TempDir()
	f1 := randomFile(t, src, "secret.bin", 700<<10)

	recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "recv"), "--dir", dst, "--once", "--json", "--allow-loopback")...)...)
	waitFor(t, 20*time.Second, "receiver online", func() bool { return recvReady(t, c, alice, bob) })
	d := c.run(30*time.Second, alice, append([]string{"disco"}, append(c.accountArgs(alice, ""), "--json", bob.jid)...)...)
	if d.code != 0 || !strings.Contains(d.stdout, `"omemo_devices":[`) {
		t.Fatalf("disco does not show bob's OMEMO devices: %s", d)
	}
	r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--json", "--allow-loopback", "--encrypt", "always", bob.jid, f1)...)...)
	if r.code != 0 {
		t.Fatalf("send: %s", r)
	}
	rr := recv.wait(t, 30*time.Second)
	if rr.code != 0 {
		t.Fatalf("receive: %s", rr)
	}
	for side, out := range map[string]string{"sender": r.stdout, "receiver": rr.stdout} {
		done := false
		for _, e := range parseEvents(t, out) {
			if e.Event == agent.EventDone {
				done = true
				if !e.Encrypted {
					t.Errorf("%s's done event is not marked encrypted: %+v", side, e)
				}
			}
		}
		if !done {
			t.Errorf("%s: no done event", side)
		}
	}
	sameContent(t, f1, filepath.Join(dst, "secret.bin"))

	// Text output of a second, encrypted transfer.
	dst2 := t.TempDir()
	recv = c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "recv"), "--dir", dst2, "--once", "--allow-loopback")...)...)
	waitFor(t, 20*time.Second, "receiver online", func() bool { return recvReady(t, c, alice, bob) })
	r = c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--allow-loopback", bob.jid, f1)...)...)
	rr = recv.wait(t, 30*time.Second)
	if r.code != 0 || rr.code != 0 || !strings.Contains(rr.stdout, "encrypted end to end (OMEMO)") || !strings.Contains(r.stdout, "encrypted end to end") {
		t.Fatalf("auto send between OMEMO accounts: send %s\nreceive %s", r, rr)
	}

	// The sender's trust list knows bob's device, blindly trusted.
	tl := c.run(20*time.Second, alice, "trust", "list", "--jid", alice.jid)
	if tl.code != 0 || !strings.Contains(tl.stdout, bob.jid) || !strings.Contains(tl.stdout, "blind") {
		t.Fatalf("trust list: %s", tl)
	}

	// carol has no OMEMO (her state directory cannot be created): always
	// fails with exit 6, auto sends in the clear.
	carol := newAccount(t, srv, "carol")
	subscribe(t, srv, alice, carol)
	for _, mode := range []string{"always", "auto"} {
		dst3 := t.TempDir()
		env := c.env
		c.env = append(c.env, "XDG_STATE_HOME=/dev/null/none")
		recv = c.start(carol, append([]string{"receive"}, append(c.accountArgs(carol, "recv"), "--dir", dst3, "--once", "--json", "--allow-loopback")...)...)
		c.env = env
		waitFor(t, 20*time.Second, "carol online", func() bool { return recvReady(t, c, alice, carol) })
		r = c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--json", "--allow-loopback", "--encrypt", mode, carol.jid, f1)...)...)
		if mode == "always" {
			if r.code != exitUnsupported {
				t.Fatalf("send --encrypt always to an account without OMEMO: want exit %d: %s", exitUnsupported, r)
			}
			recv.cancel()
			<-recv.done
			continue
		}
		rr = recv.wait(t, 30*time.Second)
		if r.code != 0 || rr.code != 0 || strings.Contains(rr.stdout, `"encrypted":true`) {
			t.Fatalf("send --encrypt auto to an account without OMEMO: send %s\nreceive %s", r, rr)
		}
	}
}

// TestEncryptedResendRestarts (issue 15): a plaintext send killed half way
// leaves big.bin.part on the receiver; the same file sent again encrypted
// is not resumed from it: it restarts from the first byte into big.bin,
// and the receiver's done event carries the note that says why. Nothing
// but big.bin is left.
func TestEncryptedResendRestarts(t *testing.T) {
	srv := startPEPProsody(t)
	c := newCLI(t, srv)
	alice, bob := contactPair(t, srv)
	c.env = append(c.env, "XDG_STATE_HOME="+t.TempDir())
	src, dst := t.TempDir(), t.TempDir()
	const size = 2 << 20
	f := randomFile(t, src, "big.bin", size)
	recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "recv"), "--dir", dst, "--json", "--allow-loopback")...)...)
	waitFor(t, 20*time.Second, "receiver online", func() bool { return recvReady(t, c, alice, bob) })
	to := bob.jid + "/recv"
	part := filepath.Join(dst, "big.bin.part")
	slow := c.start(alice, append([]string{"send"}, append(c.accountArgs(alice, "s1"), "--json", "--encrypt", "never", "--transport", "ibb", "--limit-rate", "200K", to, f)...)...)
	waitFor(t, 30*time.Second, "a plaintext .part on the receiver's side", func() bool {
		fi, err := os.Stat(part)
		return err == nil && fi.Size() >= 300<<10
	})
	if err := slow.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-slow.done
	r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, "s2"), "--json", "--encrypt", "always", "--transport", "ibb", "--allow-loopback", to, f)...)...)
	if r.code != 0 {
		t.Fatalf("encrypted resend: %s", r)
	}
	sameContent(t, f, filepath.Join(dst, "big.bin"))
	var done *agent.Event
	waitFor(t, 20*time.Second, "the receiver's done event", func() bool { return strings.Contains(recv.stdout.String(), `"event":"done"`) })
	for _, e := range parseEvents(t, recv.stdout.String()) {
		if e.Event == agent.EventDone {
			done = &e
		}
	}
	if done == nil {
		t.Fatalf("the receiver reported no done event: %s", recv.stdout)
	}
	if !done.Encrypted || done.Offset != 0 || done.Note != filetransfer.NoteEncryptedRestart {
		t.Fatalf("receiver's done event %+v: want encrypted, from offset 0, with the note %q", *done, filetransfer.NoteEncryptedRestart)
	}
	ents, _ := os.ReadDir(dst)
	if len(ents) != 1 {
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("receive dir holds %v, want only big.bin", names)
	}
}
