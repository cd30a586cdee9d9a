package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jinglekit/jinglekit/cmd/jinglectl/internal/agent"
	"github.com/jinglekit/jinglekit/internal/prosodytest"
	"github.com/jinglekit/jinglekit/internal/turntest"
)

// privacyServers are a coturn and a Prosody that announces it (XEP-0215)
// and logs every stanza in full (mod_stanza_debug): what a client sends
// its peer can be read back from the server's log.
var privacyServers struct {
	once sync.Once
	srv  *prosodytest.Server
	turn *turntest.Server
	err  error
}

func privacyServer(t *testing.T) *prosodytest.Server {
	t.Helper()
	p := &privacyServers
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const secret = "privacy-test-secret"
		p.turn, p.err = turntest.Start(ctx, turntest.Options{Secret: secret})
		if p.err != nil {
			return
		}
		p.srv, p.err = prosodytest.Start(ctx, prosodytest.Options{
			LogStanzas: true,
			Modules:    []string{"turn_external"},
			HostConfig: fmt.Sprintf(`    turn_external_secret = %q
    turn_external_host = %q
    turn_external_port = %d
    turn_external_ttl = 3600`, secret, p.turn.Host, p.turn.Port),
		})
	})
	if p.err != nil {
		t.Fatalf("privacy test servers: %v", p.err)
	}
	return p.srv
}

// stopPrivacyServers is called by TestMain.
func stopPrivacyServers() {
	p := &privacyServers
	if p.srv != nil {
		p.srv.Stop()
	}
	if p.turn != nil {
		p.turn.Stop()
	}
}

var (
	candidateRe = regexp.MustCompile(`<candidate\s[^>]*>`)
	attrRe      = regexp.MustCompile(`([a-z-]+)=['"]([^'"]*)['"]`)
)

// hostAddresses are this host's addresses other than loopback (the test
// servers listen on loopback, so a proxy or relay address is one too).
func hostAddresses(t *testing.T) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
			out = append(out, ipn.IP.String())
		}
	}
	return out
}

// checkNoHostAddress reads the stanzas from's client sent since offset
// (as Prosody logged them) and fails t if one of their Jingle transports
// names an address of this host: a candidate other than a proxy (S5B) or
// a relay (ICE), a related address, or any of the host's addresses.
// It returns how many transport candidates it saw.
func checkNoHostAddress(t *testing.T, srv *prosodytest.Server, offset int, from string) int {
	t.Helper()
	b, err := os.ReadFile(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	seen, stanzas := 0, 0
	for _, line := range strings.Split(string(b[offset:]), "\n") {
		if !strings.Contains(line, "urn:xmpp:jingle:transports:") || !strings.Contains(line, "from='"+from) {
			continue
		}
		stanzas++
		for _, ip := range hostAddresses(t) {
			if strings.Contains(line, "'"+ip+"'") || strings.Contains(line, `"`+ip+`"`) {
				t.Errorf("%s sent this host's address %s to its peer: %s", from, ip, line)
			}
		}
		for _, c := range candidateRe.FindAllString(line, -1) {
			attrs := map[string]string{}
			for _, m := range attrRe.FindAllStringSubmatch(c, -1) {
				attrs[m[1]] = m[2]
			}
			if _, ice := attrs["foundation"]; !ice && attrs["jid"] == "" {
				continue // not a transport candidate
			}
			seen++
			if typ := attrs["type"]; typ != "proxy" && typ != "relay" {
				t.Errorf("%s sent a candidate of type %q: %s", from, typ, c)
			}
			if _, ok := attrs["rel-addr"]; ok {
				t.Errorf("%s sent a related address: %s", from, c)
			}
		}
	}
	if stanzas == 0 {
		t.Errorf("no Jingle transport sent by %s in the server's log", from)
	}
	return seen
}

func logSize(t *testing.T, srv *prosodytest.Server) int {
	fi, err := os.Stat(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Size())
}

// routes returns the routes of the transport events.
func routes(evs []agent.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Event == agent.EventTransport {
			out = append(out, e.Route)
		}
	}
	return out
}

// TestNoDirectPrivacy: with --no-direct, no address of this host reaches
// the peer on any transport — SOCKS5 only through the proxy, ICE only
// relayed through the TURN server the user's server announces, else IBB —
// on the sending side and on the receiving side; and the output says
// which route the bytes took. What each side sent its peer is read back
// from the server's stanza log.
func TestNoDirectPrivacy(t *testing.T) {
	srv := privacyServer(t)
	c := newCLI(t, srv)
	for _, tc := range []struct {
		name               string
		sendArgs, recvArgs []string
		private            string // "send" or "receive": the side with --no-direct
		wantRoute          string
		wantCandidates     bool
	}{
		{"send s5b", []string{"--no-direct", "--transport", "s5b"}, nil, "send", agent.RouteS5BProxy, true},
		{"send ice", []string{"--no-direct", "--transport", "ice"}, nil, "send", agent.RouteICERelay, true},
		{"send ibb", []string{"--no-direct", "--transport", "ibb"}, nil, "send", agent.RouteIBB, false},
		// Neither side has a proxy: S5B cannot be used privately, ICE
		// through the relay is next.
		{"send auto without proxy", []string{"--no-direct", "--no-proxy"}, []string{"--no-proxy"}, "send", agent.RouteICERelay, true},
		// alice offers the proxy (and her own addresses): bob uses it and
		// offers nothing of his own.
		{"receive s5b", []string{"--transport", "s5b"}, []string{"--no-direct"}, "receive", agent.RouteS5BProxy, false},
		{"receive ice", []string{"--transport", "ice"}, []string{"--no-direct"}, "receive", agent.RouteICERelay, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice, bob := newAccount(t, srv, "alice"), newAccount(t, srv, "bob")
			src, dst := t.TempDir(), t.TempDir()
			f := randomFile(t, src, "private.bin", 200<<10)
			offset := logSize(t, srv)
			recv := c.start(bob, append([]string{"receive"}, append(c.accountArgs(bob, "recv"),
				append([]string{"--dir", dst, "--once", "--json", "--allow-loopback", "--accept-from", alice.jid}, tc.recvArgs...)...)...)...)
			waitFor(t, 20*time.Second, "receiver online", func() bool {
				b, _ := os.ReadFile(srv.LogFile)
				return strings.Contains(string(b[offset:]), bob.jid+"/recv")
			})
			time.Sleep(500 * time.Millisecond) // its presence and caps
			r := c.run(90*time.Second, alice, append([]string{"send"}, append(c.accountArgs(alice, ""),
				append([]string{"--json", "--allow-loopback"}, append(tc.sendArgs, bob.jid+"/recv", f)...)...)...)...)
			if r.code != 0 {
				t.Fatalf("send: %s", r)
			}
			rr := recv.wait(t, 30*time.Second)
			if rr.code != 0 {
				t.Fatalf("receive: %s", rr)
			}
			sameContent(t, f, filepath.Join(dst, "private.bin"))
			for who, out := range map[string]string{"send": r.stdout, "receive": rr.stdout} {
				got := routes(parseEvents(t, out))
				if len(got) != 1 || got[0] != tc.wantRoute {
					t.Errorf("%s: routes %q, want %q", who, got, tc.wantRoute)
				}
			}
			private := alice.jid
			if tc.private == "receive" {
				private = bob.jid
			}
			if n := checkNoHostAddress(t, srv, offset, private); tc.wantCandidates && n == 0 {
				t.Errorf("%s sent no candidate at all", private)
			}
		})
	}
}
