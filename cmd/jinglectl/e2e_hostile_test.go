package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/jingle"
)

// oneLineError checks that stderr is exactly one line that starts with
// "jinglectl: CMD: " and contains want.
func oneLineError(t *testing.T, r result, cmd, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	// --insecure-skip-verify adds a warning line; nothing else does.
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "jinglectl: "+cmd+": ") || !strings.Contains(lines[0], want) {
		t.Errorf("stderr is not one line with %q:\n%s", want, r.stderr)
	}
}

// TestCarelessUse runs the mistakes a user makes and checks the one-line
// error and the exit status of each.
func TestCarelessUse(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, bob, carol := newAccount(t, srv, "alice"), newAccount(t, srv, "bob"), newAccount(t, srv, "carol")
	subscribe(t, srv, alice, bob, carol)
	tmp := t.TempDir()
	file := randomFile(t, tmp, "f.bin", 4096)
	acct := func(a account) []string { return c.accountArgs(a, "") }
	send := func(a account, extra ...string) []string {
		return append(append([]string{"send"}, acct(a)...), extra...)
	}
	wrong := alice
	wrong.password = "not-the-password"

	// carol is online without any Jingle support.
	carolFull := testPeer(t, srv, carol, nil)

	for _, tc := range []struct {
		name string
		as   account
		args []string
		code int
		cmd  string
		want string
	}{
		{"wrong password", wrong, send(wrong, bob.jid, file), exitAuth, "send", "refused"},
		{"unreachable server", alice, []string{"send", "--jid", alice.jid, "--server", "127.0.0.1:1", "--ca-file", srv.CAFile, bob.jid, file}, exitConnect, "send", "cannot connect"},
		{"unknown CA", alice, []string{"send", "--jid", alice.jid, "--server", srv.C2SAddr, bob.jid, file}, exitConnect, "send", "--ca-file"},
		{"missing file", alice, send(alice, bob.jid, filepath.Join(tmp, "nope.bin")), exitUsage, "send", "no such file"},
		{"empty directory", alice, send(alice, bob.jid, t.TempDir()), exitUsage, "send", "no regular file to send"},
		{"recipient offline (bare)", alice, send(alice, "--presence-wait", "1s", bob.jid, file), exitOffline, "send", "recipient offline"},
		{"recipient offline (full)", alice, send(alice, bob.jid+"/nowhere", file), exitOffline, "send", "recipient offline"},
		{"recipient without Jingle (bare)", alice, send(alice, carol.jid, file), exitUnsupported, "send", "does not support Jingle file transfer"},
		{"recipient without Jingle (full)", alice, send(alice, carolFull.String(), file), exitUnsupported, "send", "does not support Jingle file transfer"},
		{"bad transport", alice, send(alice, "--transport", "carrier-pigeon", bob.jid, file), exitUsage, "send", "want auto, ibb, s5b or ice"},
		{"proxy and no-proxy", alice, send(alice, "--proxy", "proxy.localhost", "--no-proxy", bob.jid, file), exitUsage, "send", "exclude each other"},
		{"bad recipient", alice, send(alice, "@@", file), exitUsage, "send", "invalid recipient"},
		{"no password", account{jid: alice.jid}, send(account{jid: alice.jid}, bob.jid, file), exitUsage, "send", "no password"},
		{"no account", alice, []string{"send", bob.jid, file}, exitUsage, "send", "no account"},
		{"receive into a file", alice, append([]string{"receive"}, append(acct(alice), "--dir", file)...), exitUsage, "receive", "not a directory"},
		{"receive bad accept-from", alice, append([]string{"receive"}, append(acct(alice), "--accept-from", "@@")...), exitUsage, "receive", "not a valid JID"},
		{"disco offline", alice, append([]string{"disco"}, append(acct(alice), bob.jid+"/nowhere")...), exitOffline, "disco", "did not answer"},
		{"status without agent", alice, []string{"status", "--socket", filepath.Join(tmp, "no.sock")}, exitAgent, "status", "no agent"},
		{"cancel without agent", alice, []string{"cancel", "--socket", filepath.Join(tmp, "no.sock"), "s1"}, exitAgent, "cancel", "no agent"},
		{"send --agent without agent", alice, []string{"send", "--agent=" + filepath.Join(tmp, "no.sock"), bob.jid, file}, exitAgent, "send", "no agent"},
		{"detach without agent", alice, send(alice, "--detach", bob.jid, file), exitUsage, "send", "--detach needs --agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(60*time.Second, tc.as, tc.args...)
			t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
			if r.code != tc.code {
				t.Fatalf("exit status %d, want %d\n%s", r.code, tc.code, r)
			}
			oneLineError(t, r, tc.cmd, tc.want)
		})
	}
}

// TestDiscoWithoutJingle: disco of a client without Jingle answers, and
// says so.
func TestDiscoWithoutJingle(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	alice, carol := newAccount(t, srv, "alice"), newAccount(t, srv, "carol")
	full := testPeer(t, srv, carol, nil)
	r := c.run(30*time.Second, alice, append([]string{"disco"}, append(c.accountArgs(alice, ""), full.String())...)...)
	if r.code != 0 {
		t.Fatalf("disco: %s", r)
	}
	for _, want := range []string{full.String(), "jingle:         no", "transports:     none", "send files:     no"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("disco output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = c.run(30*time.Second, alice, append([]string{"disco"}, append(c.accountArgs(alice, ""), "--json", full.String())...)...)
	var rep discoReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Jingle || rep.FileTransfer || rep.JID != full.String() || len(rep.Features) == 0 {
		t.Errorf("disco --json: %v %+v\n%s", err, rep, r)
	}
}

// TestBadConfig checks that errors in the configuration file name the
// file and line.
func TestBadConfig(t *testing.T) {
	c := &cli{t: t, bin: binary(t)}
	dir := t.TempDir()
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", "jid = \"a@b\"\nfrobnicate = 1\n", ":2: unknown setting \"frobnicate\""},
		{"syntax", "[transfer]\ntransport = s5b\n", ":2: invalid value \"s5b\""},
		{"bad transport", "[transfer]\ntransport = \"tcp\"\n", ":2: transfer.transport: want one of"},
		{"bad size", "[receive]\nmax_size = \"lots\"\n", ":2: receive.max_size"},
		{"public password", "jid = \"a@b\"\npassword = \"x\"\n", ":2: holds a password but is readable by others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".toml")
			if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			r := c.run(10*time.Second, account{}, "send", "--config", p, "x@y", p)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r)
			}
			oneLineError(t, r, "send", p+tc.want)
		})
	}
	r := c.run(10*time.Second, account{}, "send", "--config", filepath.Join(dir, "missing.toml"), "x@y", "z")
	if r.code != exitUsage || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing config: %s", r)
	}
}

// TestPeerRefusals: a receiver that declines, one that reports a hash
// mismatch, and one that never answers.
func TestPeerRefusals(t *testing.T) {
	srv := prosody.Get(t)
	c := newCLI(t, srv)
	file := randomFile(t, t.TempDir(), "f.bin", 64<<10)

	t.Run("declined", func(t *testing.T) {
		alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
		// bob only takes files from someone else.
		recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "r"), "--dir", t.TempDir(), "--accept-from", "mallory@localhost", "--allow-loopback")...)...)
		waitFor(t, 20*time.Second, "receiver up", func() bool { return strings.Contains(recv.stderr.String(), "waiting for files") })
		r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--allow-loopback", bob.jid+"/r", file)...)...)
		if r.code != exitDeclined {
			t.Fatalf("exit %d, want %d\n%s", r.code, exitDeclined, r)
		}
		oneLineError(t, r, "send", "f.bin: filetransfer: declined")
	})
	t.Run("hash mismatch", func(t *testing.T) {
		alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
		peer := testPeer(t, srv, bob, &terminatingApp{reason: jingle.ReasonMediaError, accept: true})
		r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--allow-loopback", peer.String(), file)...)...)
		if r.code != exitHash {
			t.Fatalf("exit %d, want %d\n%s", r.code, exitHash, r)
		}
		oneLineError(t, r, "send", "hash mismatch")
	})
	t.Run("timeout", func(t *testing.T) {
		alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
		peer := testPeer(t, srv, bob, &terminatingApp{})
		r := c.run(60*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""), "--timeout", "3s", peer.String(), file)...)...)
		if r.code != exitTimeout {
			t.Fatalf("exit %d, want %d\n%s", r.code, exitTimeout, r)
		}
		oneLineError(t, r, "send", "f.bin")
	})
}

// TestForeignControlSocket: a control socket owned by another user is
// refused by every client command and by the agent.
func TestForeignControlSocket(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a socket to another user")
	}
	c := &cli{t: t, bin: binary(t)}
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chown(sock, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"status", "--socket", sock},
		{"cancel", "--socket", sock, "s1"},
		{"send", "--agent=" + sock, "bob@localhost", randomFile(t, dir, "f", 10)},
	} {
		r := c.run(10*time.Second, account{}, args...)
		if r.code != exitAgent {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitAgent, r)
		}
		oneLineError(t, r, args[0], "owned by uid 65534, not by you")
	}
	r := c.run(10*time.Second, account{jid: "a@localhost", password: "x"}, "agent", "--jid", "a@localhost", "--socket", sock)
	if r.code != exitAgent {
		t.Errorf("agent: exit %d, want %d\n%s", r.code, exitAgent, r)
	}
	oneLineError(t, r, "agent", "owned by uid 65534")
}
