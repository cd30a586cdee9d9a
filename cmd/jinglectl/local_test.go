package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/internal/testproc"
	"github.com/jinglekit/jinglekit/linklocal"
)

// The serverless tests run jinglectl processes on loopback that reach each
// other with --peer: no multicast, no server.

var receivingOn = regexp.MustCompile(` on (127\.0\.0\.1:[0-9]+) into `)

// startLocalReceiver runs receive --local as name on a free loopback port
// and returns it with the address it listens on.
func startLocalReceiver(t *testing.T, c *cli, name, dir string, extra ...string) (*background, string) {
	t.Helper()
	args := append([]string{"receive", "--local", "--name", name, "--listen", "127.0.0.1:0", "--no-mdns", "--dir", dir}, extra...)
	bg := c.start(account{}, args...)
	var addr string
	waitFor(t, 10*time.Second, "the receiver to listen", func() bool {
		if m := receivingOn.FindStringSubmatch(bg.stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		select {
		case <-bg.done:
			t.Fatalf("the receiver exited: %v\n%s", bg.err, bg.stderr)
		default:
		}
		return false
	})
	return bg, addr
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestLocalSendReceive(t *testing.T) {
	for _, transport := range []string{agent.TransportS5B, agent.TransportICE, agent.TransportIBB} {
		t.Run(transport, func(t *testing.T) {
			c := newCLI(t, nil)
			src := randomFile(t, t.TempDir(), "data.bin", 3<<20+17)
			in := t.TempDir()
			recv, addr := startLocalReceiver(t, c, "bob@host-b", in, "--accept-from", "alice@host-a", "--once", "--json")
			r := c.run(60*time.Second, account{}, "send", "--local", "--name", "alice@host-a", "--peer", addr,
				"--transport", transport, "--json", "bob@host-b", src)
			if r.code != exitOK {
				t.Fatalf("send: %s", r)
			}
			checkSendEvents(t, parseEvents(t, r.stdout), 1, transport)
			rr := recv.wait(t, 30*time.Second)
			if rr.code != exitOK {
				t.Fatalf("receive: %s", rr)
			}
			checkReceiveEvents(t, parseEvents(t, rr.stdout), 1, transport)
			got := filepath.Join(in, "data.bin")
			if a, b := fileSHA256(t, src), fileSHA256(t, got); a != b {
				t.Fatalf("sha-256 of the received file %s, of the source %s", b, a)
			}
			if !strings.Contains(rr.stderr, "unauthenticated and unencrypted") {
				t.Errorf("receive printed no warning about the channel:\n%s", rr.stderr)
			}
		})
	}
}

func TestLocalDeclinesUnlistedSender(t *testing.T) {
	c := newCLI(t, nil)
	src := randomFile(t, t.TempDir(), "data.bin", 64<<10)
	in := t.TempDir()
	recv, addr := startLocalReceiver(t, c, "bob@host-b", in, "--accept-from", "alice@host-a", "--json")
	r := c.run(30*time.Second, account{}, "send", "--local", "--name", "mallory@host-m", "--peer", addr, "bob@host-b", src)
	if r.code != exitDeclined {
		t.Fatalf("send from an unlisted name: want exit %d, got %s", exitDeclined, r)
	}
	// The name, not the address, is what --accept-from checks: alice from
	// the same address is taken.
	r = c.run(30*time.Second, account{}, "send", "--local", "--name", "alice@host-a", "--peer", addr, "bob@host-b", src)
	if r.code != exitOK {
		t.Fatalf("send from a listed name: %s", r)
	}
	recv.cancel()
	rr := recv.wait(t, 10*time.Second)
	var declined, done int
	for _, ev := range parseEvents(t, rr.stdout) {
		switch {
		case ev.Event == agent.EventDeclined && ev.Peer == "mallory@host-m":
			declined++
		case ev.Event == agent.EventDone && ev.Peer == "alice@host-a":
			done++
		case ev.Peer == "mallory@host-m" && ev.Event == agent.EventAccepted:
			t.Errorf("mallory's file was accepted: %+v", ev)
		}
	}
	if declined != 1 || done != 1 {
		t.Errorf("receiver events: %d declined from mallory (want 1), %d done from alice (want 1)\n%s", declined, done, rr.stdout)
	}
	entries, err := os.ReadDir(in)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"data.bin"}) {
		t.Errorf("receive dir holds %v, want only alice's data.bin", names)
	}
}

func TestLocalPeers(t *testing.T) {
	c := newCLI(t, nil)
	_, addr := startLocalReceiver(t, c, "bob@host-b", t.TempDir())
	for _, peer := range []string{addr, "bob@host-b=" + addr} {
		r := c.run(30*time.Second, account{}, "peers", "--local", "--name", "carol@host-c", "--peer", peer, "--json")
		if r.code != exitOK {
			t.Fatalf("peers --peer %s: %s", peer, r)
		}
		var got []peerReport
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		for dec.More() {
			var p peerReport
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("peers --json: %v\n%s", err, r.stdout)
			}
			got = append(got, p)
		}
		if len(got) != 1 {
			t.Fatalf("peers --peer %s: want 1 peer, got %+v", peer, got)
		}
		p := got[0]
		host, port, _ := net.SplitHostPort(addr)
		if p.Name != "bob@host-b" || p.Address != host || port != strconv.Itoa(p.Port) || p.Error != "" {
			t.Errorf("peer %+v, want bob@host-b at %s", p, addr)
		}
		for _, f := range []string{"urn:xmpp:jingle:1", filetransfer.NS, "urn:xmpp:jingle:transports:s5b:1", "urn:xmpp:jingle:transports:ibb:1"} {
			if !slices.Contains(p.Features, f) {
				t.Errorf("peer features lack %s: %v", f, p.Features)
			}
		}
	}
	r := c.run(30*time.Second, account{}, "peers", "--local", "--name", "carol@host-c", "--peer", addr)
	if r.code != exitOK || !strings.Contains(r.stdout, "bob@host-b") || !strings.Contains(r.stdout, "file-transfer:5") ||
		!strings.Contains(r.stdout, "s5b") || !strings.Contains(r.stdout, "ibb") {
		t.Errorf("peers (text) does not list bob with his features:\n%s", r)
	}
}

// TestLocalHostilePeers points --peer at things that are not link-local
// XMPP peers: one line of error and the documented exit status.
func TestLocalHostilePeers(t *testing.T) {
	c := newCLI(t, nil)
	src := randomFile(t, t.TempDir(), "data.bin", 1024)

	// An HTTP-like server that answers garbage and closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			_, _ = conn.Read(buf)
			_, _ = conn.Write([]byte("HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
			conn.Close()
		}
	}()
	// A port nobody listens on.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	// A real peer under another name.
	_, bobAddr := startLocalReceiver(t, c, "bob@host-b", t.TempDir())

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not xmpp", []string{"--peer", ln.Addr().String(), "bob@host-b", src}, exitConnect, "serverless: peer " + ln.Addr().String()},
		{"nobody listens", []string{"--peer", deadAddr, "bob@host-b", src}, exitConnect, "connection refused"},
		{"someone else", []string{"--peer", bobAddr, "dave@host-d", src}, exitOffline, "dave@host-d is not around"},
		{"bad peer flag", []string{"--peer", "nowhere", "bob@host-b", src}, exitUsage, "want HOST:PORT"},
		{"bad name", []string{"--name", "a.b@host", "--peer", bobAddr, "bob@host-b", src}, exitUsage, "--name"},
		{"bad recipient", []string{"--peer", bobAddr, "bob", src}, exitUsage, "invalid link-local name"},
		{"own name", []string{"--name", "bob@host-b", "--peer", bobAddr, "bob@host-b", src}, exitUsage, "own name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"send", "--local", "--name", "alice@host-a"}, tc.args...)
			r := c.run(30*time.Second, account{}, args...)
			if r.code != tc.code {
				t.Fatalf("want exit %d, got %s", tc.code, r)
			}
			var errLines []string
			for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
				if l != unauthenticatedWarning {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 || !strings.HasPrefix(errLines[0], "jinglectl: send: ") || !strings.Contains(errLines[0], tc.want) {
				t.Errorf("stderr is not one error line with %q:\n%s", tc.want, r.stderr)
			}
		})
	}
	ln.Close()
	<-served
}

func TestLocalName(t *testing.T) {
	for _, tc := range []struct{ user, host, want string }{
		{"alice", "pronto", "alice@pronto"},
		{"alice", "pronto.example.org", "alice@pronto"},
		{"Jean.Dupont", "my_box", "Jean-Dupont@my-box"},
		{"", "", "user@localhost"},
		{"x\\y@z", "-é-", "x-y-z@localhost"},
		{strings.Repeat("u", 80), strings.Repeat("h", 80), strings.Repeat("u", 22) + "@" + strings.Repeat("h", 40)},
	} {
		got := sanitizeLocalName(tc.user, tc.host)
		if got != tc.want {
			t.Errorf("sanitizeLocalName(%q, %q) = %q, want %q", tc.user, tc.host, got, tc.want)
		}
		if _, err := linklocal.ParseName(got); err != nil {
			t.Errorf("sanitizeLocalName(%q, %q) = %q: %v", tc.user, tc.host, got, err)
		}
	}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--local", "x"}, true},
		{[]string{"-local=true"}, true},
		{[]string{"--name", "a@b"}, false},
		{[]string{"--", "--local"}, false},
	} {
		if got := hasLocalFlag(tc.args); got != tc.want {
			t.Errorf("hasLocalFlag(%q) = %v", tc.args, got)
		}
	}
}

// TestMakeDemo runs scripts/demo.sh (what make demo runs) with a smaller
// file and checks that it succeeds and that the hashes it prints are the
// source's.
func TestMakeDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds jinglectl and transfers files")
	}
	// The script runs jinglectl in the background: a guarded group stops
	// it even if this test binary is killed.
	group, err := testproc.NewGroup("jinglectl-demo", testproc.GroupOptions{Guard: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := group.Close(); err != nil {
			t.Error(err)
		}
	}()
	cmd := group.Command("sh", "../../scripts/demo.sh")
	cmd.Env = append(cmd.Env, "DEMO_SIZE_MIB=4")
	out, err := testproc.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	src := regexp.MustCompile(`demo: source sha-256 ([0-9a-f]{64})`).FindSubmatch(out)
	if src == nil {
		t.Fatalf("demo.sh printed no source hash:\n%s", out)
	}
	for _, tr := range []string{"s5b", "ibb"} {
		m := regexp.MustCompile(`demo: ` + tr + `: verified sha-256 ([0-9a-f]{64})`).FindSubmatch(out)
		if m == nil || string(m[1]) != string(src[1]) {
			t.Errorf("demo.sh: no verified hash %s for %s:\n%s", src[1], tr, out)
		}
		if !strings.Contains(string(out), "verified, "+tr) {
			t.Errorf("demo.sh: jinglectl did not report a verified transfer over %s:\n%s", tr, out)
		}
	}
}
