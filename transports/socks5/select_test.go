package socks5

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

// signals records what a transport sends to the peer.
type signals struct {
	mu  sync.Mutex
	els []Transport
}

func (s *signals) TransportInfo(_ context.Context, el jingle.Element) error {
	var tr Transport
	if err := el.Decode(&tr); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.els = append(s.els, tr)
	return nil
}

func (s *signals) sent() []Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Transport(nil), s.els...)
}

// bareTransport returns a transport with no candidates and no checks
// running, for driving the selection rules by hand.
func bareTransport(t *testing.T, initiator bool) (*transport, *signals) {
	t.Helper()
	sig := &signals{}
	m := NewMethod(Settings{NoDirect: true, NoProxyDiscovery: true, Logger: slog.New(slog.DiscardHandler)})
	p := jingle.TransportParams{
		SID: "s1", Content: jingle.ContentKey{Creator: jingle.CreatorInitiator, Name: "c"},
		Local: jid.MustParse("alice@example.net/a"), Peer: jid.MustParse("bob@example.net/b"),
		Initiator: initiator, Signal: sig,
	}
	if !initiator {
		p.Local, p.Peer = p.Peer, p.Local
		offer := jingle.MustElement(Transport{SID: "stream"})
		p.Offer = &offer
	}
	tr, err := newTransport(context.Background(), m, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, sig
}

// addLocal gives the transport one of its own candidates.
func (t *transport) addTestLocal(cid string, typ CandidateType, prio uint32) {
	t.local = append(t.local, &localCand{
		Candidate: Candidate{CID: cid, Host: "127.0.0.1", JID: "x@y/z", Port: "1", Type: typ},
		prio:      prio, typ: typ, addr: "127.0.0.1:1",
		proxy: Proxy{JID: jid.MustParse("proxy.example.net"), Addr: "127.0.0.1:1"},
	})
}

func pipeConn(t *testing.T) net.Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a
}

// TestSelectionRules drives XEP-0260 §2.4 by hand: the reports of both
// sides, activation and proxy errors, and checks the outcome.
func TestSelectionRules(t *testing.T) {
	const (
		direct = 126<<16 + 100
		lower  = 126<<16 + 50
		proxy  = 10<<16 + 100
	)
	type want int
	const (
		wantOurs     want = iota // the peer's candidate we connected to
		wantAccepted             // our candidate, the connection the peer opened
		wantFail
		wantPending
	)
	cases := []struct {
		name      string
		initiator bool
		ours      choice // our report over the peer's candidates
		local     []localCand
		info      []Transport // the peer's transport-info, in order
		accepted  bool        // the peer's connection is on our streamhost
		want      want
	}{
		{name: "tie, initiator: our choice", initiator: true,
			ours: choice{state: used, cid: "p1", prio: direct}, local: []localCand{{Candidate: Candidate{CID: "l1"}, prio: direct}},
			info: []Transport{{CandidateUsed: &CID{"l1"}}}, accepted: true, want: wantOurs},
		{name: "tie, responder: the initiator's choice", initiator: false,
			ours: choice{state: used, cid: "p1", prio: direct}, local: []localCand{{Candidate: Candidate{CID: "l1"}, prio: direct}},
			info: []Transport{{CandidateUsed: &CID{"l1"}}}, accepted: true, want: wantAccepted},
		{name: "ours higher, responder", initiator: false,
			ours: choice{state: used, cid: "p1", prio: direct}, local: []localCand{{Candidate: Candidate{CID: "l1"}, prio: lower}},
			info: []Transport{{CandidateUsed: &CID{"l1"}}}, accepted: true, want: wantOurs},
		{name: "theirs higher, initiator", initiator: true,
			ours: choice{state: used, cid: "p1", prio: lower}, local: []localCand{{Candidate: Candidate{CID: "l1"}, prio: direct}},
			info: []Transport{{CandidateUsed: &CID{"l1"}}}, accepted: true, want: wantAccepted},
		{name: "we failed, the peer used ours", initiator: true,
			ours: choice{state: failed}, local: []localCand{{Candidate: Candidate{CID: "l1"}, prio: lower}},
			info: []Transport{{CandidateUsed: &CID{"l1"}}}, accepted: true, want: wantAccepted},
		{name: "the peer failed, we used theirs", initiator: false,
			ours: choice{state: used, cid: "p1", prio: lower},
			info: []Transport{{CandidateError: &Empty{}}}, want: wantOurs},
		{name: "both failed", initiator: true,
			ours: choice{state: failed},
			info: []Transport{{CandidateError: &Empty{}}}, want: wantFail},
		{name: "peer's report missing", initiator: true,
			ours: choice{state: used, cid: "p1", prio: lower}, want: wantPending},
		{name: "nominated direct, bytestream not there yet", initiator: true,
			ours: choice{state: failed}, local: []localCand{{Candidate: Candidate{CID: "l1"}, prio: direct}},
			info: []Transport{{CandidateUsed: &CID{"l1"}}}, want: wantPending},
		{name: "peer's proxy nominated, not yet activated", initiator: false,
			ours: choice{state: used, cid: "p1", prio: proxy, typ: TypeProxy},
			info: []Transport{{CandidateError: &Empty{}}}, want: wantPending},
		{name: "peer's proxy activated", initiator: false,
			ours: choice{state: used, cid: "p1", prio: proxy, typ: TypeProxy},
			info: []Transport{{CandidateError: &Empty{}}, {Activated: &CID{"p1"}}}, want: wantOurs},
		{name: "activated before the report", initiator: false,
			ours: choice{state: used, cid: "p1", prio: proxy, typ: TypeProxy},
			info: []Transport{{Activated: &CID{"p1"}}, {CandidateError: &Empty{}}}, want: wantOurs},
		{name: "peer activated another candidate", initiator: false,
			ours: choice{state: used, cid: "p1", prio: proxy, typ: TypeProxy},
			info: []Transport{{CandidateError: &Empty{}}, {Activated: &CID{"p2"}}}, want: wantFail},
		{name: "peer's proxy-error", initiator: true,
			ours: choice{state: used, cid: "p1", prio: proxy, typ: TypeProxy},
			info: []Transport{{CandidateError: &Empty{}}, {ProxyError: &Empty{}}}, want: wantFail},
		{name: "candidate-used names no candidate of ours", initiator: true,
			ours: choice{state: used, cid: "p1", prio: direct}, local: []localCand{{Candidate: Candidate{CID: "l1"}, prio: direct}},
			info: []Transport{{CandidateUsed: &CID{"l2"}}}, want: wantFail},
		{name: "a second report is ignored", initiator: true,
			ours: choice{state: used, cid: "p1", prio: lower}, local: []localCand{{Candidate: Candidate{CID: "l1"}, prio: direct}},
			info: []Transport{{CandidateError: &Empty{}}, {CandidateUsed: &CID{"l1"}}}, accepted: true, want: wantOurs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _ := bareTransport(t, c.initiator)
			for _, lc := range c.local {
				tr.addTestLocal(lc.CID, TypeDirect, lc.prio)
			}
			ours := c.ours
			if ours.state == used {
				ours.conn = pipeConn(t)
			}
			var acc net.Conn
			tr.mu.Lock()
			tr.ours = ours
			if c.accepted {
				acc = pipeConn(t)
				tr.accepted = []*acceptedConn{{conn: acc, local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}}
			}
			for _, info := range c.info {
				info.SID = tr.sid
				tr.notifications(info)
			}
			done := tr.isDone()
			conn, err := tr.conn, tr.err
			tr.mu.Unlock()
			switch c.want {
			case wantPending:
				if done {
					t.Fatalf("settled (%v, %v), want still negotiating", conn, err)
				}
			case wantFail:
				if !done || err == nil || !errors.Is(err, jingle.ErrTransportFailed) {
					t.Fatalf("done %v, %v; want a transport failure", done, err)
				}
			case wantOurs:
				if !done || err != nil || conn != ours.conn {
					t.Fatalf("done %v, err %v; want our connection to the peer's candidate", done, err)
				}
			case wantAccepted:
				if !done || err != nil || conn != acc {
					t.Fatalf("done %v, err %v; want the peer's connection to our candidate", done, err)
				}
			}
		})
	}
}

// TestLateBytestream: when our direct candidate is nominated before the
// peer's connection arrived, the transport settles on its arrival.
func TestLateBytestream(t *testing.T) {
	tr, _ := bareTransport(t, true)
	tr.addTestLocal("l1", TypeDirect, 126<<16)
	tr.mu.Lock()
	tr.ours = choice{state: failed}
	tr.notifications(Transport{SID: tr.sid, CandidateUsed: &CID{"l1"}})
	tr.mu.Unlock()
	if tr.isDone() {
		t.Fatal("settled without a bytestream")
	}
	c := pipeConn(t)
	tr.deliver(&acceptedConn{conn: c, local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}})
	got, err := tr.Dial(context.Background())
	if err != nil || got != c {
		t.Fatalf("Dial: %v, %v", got, err)
	}
}

// TestOwnProxyActivationFails: when our proxy is nominated and cannot be
// activated, the transport sends proxy-error and fails.
func TestOwnProxyActivationFails(t *testing.T) {
	tr, sig := bareTransport(t, false)
	// A proxy that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr.addTestLocal("px", TypeProxy, 10<<16)
	tr.local[0].addr = addr
	tr.mu.Lock()
	tr.ours = choice{state: failed}
	tr.notifications(Transport{SID: tr.sid, CandidateUsed: &CID{"px"}})
	tr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tr.Dial(ctx); !errors.Is(err, jingle.ErrTransportFailed) {
		t.Fatalf("Dial: %v", err)
	}
	// Dial may also have started the (empty) checks: candidate-error.
	var proxyErrs, activated int
	for _, s := range sig.sent() {
		if s.SID != tr.sid {
			t.Errorf("sent for stream %q", s.SID)
		}
		if s.ProxyError != nil {
			proxyErrs++
		}
		if s.Activated != nil {
			activated++
		}
	}
	if proxyErrs != 1 || activated != 0 {
		t.Fatalf("sent %+v, want one proxy-error", sig.sent())
	}
}

// TestOfferChecks: offers a transport must refuse, and candidates it must
// ignore.
func TestOfferChecks(t *testing.T) {
	m := NewMethod(Settings{NoDirect: true, NoProxyDiscovery: true, Logger: slog.New(slog.DiscardHandler)})
	params := func(el jingle.Element) jingle.TransportParams {
		return jingle.TransportParams{
			SID: "s1", Local: jid.MustParse("bob@example.net/b"), Peer: jid.MustParse("alice@example.net/a"),
			Offer: &el, Signal: &signals{},
		}
	}
	for _, c := range []struct {
		name string
		el   jingle.Element
	}{
		{"udp mode", jingle.MustElement(Transport{SID: "x", Mode: "udp"})},
		{"no sid", jingle.MustElement(Transport{})},
		{"other namespace", jingle.MustElement(struct {
			XMLName struct{} `xml:"urn:xmpp:jingle:transports:ibb:1 transport"`
			SID     string   `xml:"sid,attr"`
		}{SID: "x"})},
	} {
		if tr, err := m.NewTransport(context.Background(), params(c.el)); err == nil {
			tr.Close()
			t.Errorf("%s: accepted", c.name)
		}
	}

	good := Candidate{CID: "c", Host: "192.0.2.1", JID: "alice@example.net/a", Port: "5086", Priority: "8257636", Type: TypeDirect}
	mod := func(f func(*Candidate)) Candidate { c := good; f(&c); return c }
	bad := []Candidate{
		mod(func(c *Candidate) { c.CID = "" }),
		mod(func(c *Candidate) { c.CID = strings.Repeat("x", 300) }),
		mod(func(c *Candidate) { c.Host = "" }),
		mod(func(c *Candidate) { c.Host = strings.Repeat("h", 256) }),
		mod(func(c *Candidate) { c.JID = "@" }),
		mod(func(c *Candidate) { c.Port = "0" }),
		mod(func(c *Candidate) { c.Port = "70000" }),
		mod(func(c *Candidate) { c.Port = "http" }),
		mod(func(c *Candidate) { c.Priority = "0" }),
		mod(func(c *Candidate) { c.Priority = "-5" }),
		mod(func(c *Candidate) { c.Priority = "99999999999" }),
		mod(func(c *Candidate) { c.Type = "relay" }),
	}
	for i, b := range bad {
		if _, err := checkCandidate(b); err == nil {
			t.Errorf("bad candidate %d accepted: %+v", i, b)
		}
	}
	if rc, err := checkCandidate(mod(func(c *Candidate) { c.Port = ""; c.Type = "" })); err != nil || rc.addr != "192.0.2.1:1080" || rc.typ != TypeDirect {
		t.Errorf("defaults: %+v, %v", rc, err)
	}

	// An offer with too many candidates, duplicates and bad ones.
	offer := Transport{SID: "x"}
	for i := range 3 * MaxCandidates {
		c := good
		c.CID = "c" + string(rune('A'+i%40))
		if i%7 == 0 {
			c.Priority = "bad"
		}
		offer.Candidates = append(offer.Candidates, c)
	}
	tr, err := m.NewTransport(context.Background(), params(jingle.MustElement(offer)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	st := tr.(*transport)
	if n := len(st.remote); n == 0 || n > MaxCandidates {
		t.Errorf("%d candidates kept", n)
	}
	seen := map[string]bool{}
	for _, rc := range st.remote {
		if seen[rc.cid] {
			t.Errorf("duplicate cid %q kept", rc.cid)
		}
		seen[rc.cid] = true
	}
}

// TestDialerPolicy: a peer cannot make the transport connect to loopback
// (unless allowed), unspecified, multicast or link-local addresses.
func TestDialerPolicy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := dialer(false).DialContext(ctx, "tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("connected to loopback without AllowLoopback")
	}
	if c, err := dialer(true).DialContext(ctx, "tcp", ln.Addr().String()); err != nil {
		t.Errorf("AllowLoopback: %v", err)
	} else {
		c.Close()
	}
	for _, a := range []string{"0.0.0.0:80", "[::]:80", "224.0.0.1:80", "169.254.1.1:80", "[fe80::1]:80", "255.255.255.255:80", "0.1.2.3:80"} {
		if c, err := dialer(true).DialContext(ctx, "tcp", a); err == nil {
			c.Close()
			t.Errorf("connected to %s", a)
		} else if !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: %v, want a refusal by policy", a, err)
		}
	}
}
