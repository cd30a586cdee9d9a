package socks5_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestTransferDirect: a session alice → bob over S5B direct on loopback
// carries 0 B, 1 B, 1 MiB and 16 MiB of random data intact, with
// half-close, and the stream is a plain TCP connection between the two
// streamhost/client ends.
func TestTransferDirect(t *testing.T) {
	rec := &recorder{}
	n, alice, bob := newPair(t, loopback(), loopback(), false)
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte { rec.observe(from, to, raw); return raw })
	for _, size := range []int{0, 1, 1 << 20, 16 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			as, bs := accepted(t, alice, bob, offer("f"))
			ca, cb := conns(t, as, bs, "f")
			if _, ok := ca.(*net.TCPConn); !ok {
				t.Errorf("alice's stream is a %T, want *net.TCPConn", ca)
			}
			if ca.LocalAddr().String() != cb.RemoteAddr().String() || ca.RemoteAddr().String() != cb.LocalAddr().String() {
				t.Errorf("alice %s→%s, bob %s→%s: not the two ends of one TCP connection", ca.LocalAddr(), ca.RemoteAddr(), cb.LocalAddr(), cb.RemoteAddr())
			}
			send(t, ca, cb, size)
			if err := as.Terminate(tctx(t, 5*time.Second), jingle.Reason{Condition: jingle.ReasonSuccess}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-bs.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("bob's session did not end")
			}
		})
	}
	// Both parties offered candidates and reported.
	ini := rec.offer(jingle.ActionSessionInitiate)
	acc := rec.offer(jingle.ActionSessionAccept)
	if len(ini.Candidates) != 1 || ini.Mode != "tcp" || ini.DstAddr != "" || len(acc.Candidates) != 1 || acc.Mode != "" || acc.SID != ini.SID {
		t.Errorf("offer %+v, answer %+v", ini, acc)
	}
	if p, _ := ini.Candidates[0].PriorityValue(); p != socks5.Priority(socks5.TypeDirect, 65535) {
		t.Errorf("direct candidate priority %d", p)
	}
	if len(rec.reports(xmpptest.Alice)) == 0 || len(rec.reports(xmpptest.Bob)) == 0 {
		t.Errorf("reports: alice %d, bob %d", len(rec.reports(xmpptest.Alice)), len(rec.reports(xmpptest.Bob)))
	}
}

// TestSelectionTie: both parties connect to each other's candidate of
// equal priority and report candidate-used; the initiator's choice (bob's
// candidate) is the bytestream. Alice's report is held back until bob's
// has gone, so that both really are candidate-used.
func TestSelectionTie(t *testing.T) {
	rec := &recorder{}
	n, alice, bob := newPair(t, loopback(), loopback(), false)
	h := &holder{n: n, from: xmpptest.Alice, rec: rec, hold: isReport,
		release: func(from, _ jid.JID, raw []byte) bool { return from.String() == xmpptest.Bob && isReport(raw) }}
	n.SetFilter(h.filter)
	as, bs := accepted(t, alice, bob, offer("f"))
	ca, cb := conns(t, as, bs, "f")
	ra, rb := rec.reports(xmpptest.Alice), rec.reports(xmpptest.Bob)
	if len(ra) != 1 || ra[0].CandidateUsed == nil || len(rb) != 1 || rb[0].CandidateUsed == nil {
		t.Fatalf("reports: alice %+v, bob %+v; want candidate-used from both", ra, rb)
	}
	bobCand := rec.offer(jingle.ActionSessionAccept).Candidates[0]
	if ra[0].CandidateUsed.CID != bobCand.CID {
		t.Fatalf("alice used %q, bob offered %q", ra[0].CandidateUsed.CID, bobCand.CID)
	}
	// The nominated candidate is bob's: alice connected to bob's streamhost.
	if port(ca.RemoteAddr()) != bobCand.Port || port(cb.LocalAddr()) != bobCand.Port {
		t.Errorf("alice %s→%s, bob's candidate port %s: not the initiator's choice", ca.LocalAddr(), ca.RemoteAddr(), bobCand.Port)
	}
	send(t, cb, ca, 64<<10)
}

// TestSelectionHigherPriority: alice uses bob's proxy candidate, bob uses
// alice's direct candidate; the direct one has the higher priority and
// wins although alice is the initiator, so the proxy is never activated.
func TestSelectionHigherPriority(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	px := newFakeProxy(t, n, false)
	as, bs := loopback(), unreachable()
	bs.Proxies = []socks5.Proxy{px.proxy()}
	alice, bob := newSide(t, n, xmpptest.Alice, as, nil), newSide(t, n, xmpptest.Bob, bs, nil)
	rec := &recorder{}
	h := &holder{n: n, from: xmpptest.Bob, rec: rec, hold: isReport,
		release: func(from, _ jid.JID, raw []byte) bool { return from.String() == xmpptest.Alice && isReport(raw) }}
	n.SetFilter(h.filter)
	sa, sb := accepted(t, alice, bob, offer("f"))
	ca, cb := conns(t, sa, sb, "f")
	ra, rb := rec.reports(xmpptest.Alice), rec.reports(xmpptest.Bob)
	if len(ra) != 1 || ra[0].CandidateUsed == nil || len(rb) != 1 || rb[0].CandidateUsed == nil {
		t.Fatalf("reports: alice %+v, bob %+v; want candidate-used from both", ra, rb)
	}
	acc := rec.offer(jingle.ActionSessionAccept)
	if len(acc.Candidates) != 2 || acc.Candidates[1].Type != socks5.TypeProxy || ra[0].CandidateUsed.CID != acc.Candidates[1].CID {
		t.Fatalf("alice used %q of %+v, want bob's proxy", ra[0].CandidateUsed.CID, acc.Candidates)
	}
	if acc.DstAddr != socks5.DstAddr(acc.SID, xmpptest.Bob, xmpptest.Alice) {
		t.Errorf("bob's dstaddr %q", acc.DstAddr)
	}
	aliceCand := rec.offer(jingle.ActionSessionInitiate).Candidates[0]
	if port(ca.LocalAddr()) != aliceCand.Port || port(cb.RemoteAddr()) != aliceCand.Port {
		t.Errorf("alice %s←%s: not alice's direct candidate (port %s)", ca.LocalAddr(), ca.RemoteAddr(), aliceCand.Port)
	}
	if px.activations() != 0 {
		t.Errorf("%d proxy activations", px.activations())
	}
	send(t, ca, cb, 256<<10)
}

// TestSelectionUnreachable: bob's candidate is unreachable, so alice
// reports candidate-error; bob's candidate-used nominates alice's
// candidate.
func TestSelectionUnreachable(t *testing.T) {
	rec := &recorder{}
	n, alice, bob := newPair(t, loopback(), unreachable(), false)
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte { rec.observe(from, to, raw); return raw })
	as, bs := accepted(t, alice, bob, offer("f"))
	ca, cb := conns(t, as, bs, "f")
	ra := rec.reports(xmpptest.Alice)
	if len(ra) != 1 || ra[0].CandidateError == nil {
		t.Fatalf("alice's reports %+v, want candidate-error", ra)
	}
	aliceCand := rec.offer(jingle.ActionSessionInitiate).Candidates[0]
	if port(ca.LocalAddr()) != aliceCand.Port {
		t.Errorf("alice's stream is on %s, not on her candidate port %s", ca.LocalAddr(), aliceCand.Port)
	}
	send(t, cb, ca, 1<<20)
}

// TestCandidateUsedBeforeAccept: like Libervia, bob sends candidate-used
// before session-accept; alice takes it and the transfer works.
func TestCandidateUsedBeforeAccept(t *testing.T) {
	rec := &recorder{}
	n, alice, bob := newPair(t, loopback(), loopback(), false)
	h := &holder{n: n, from: xmpptest.Bob, rec: rec,
		hold:    func(raw []byte) bool { return isAction(raw, jingle.ActionSessionAccept) },
		release: func(from, _ jid.JID, raw []byte) bool { return from.String() == xmpptest.Bob && isReport(raw) }}
	n.SetFilter(h.filter)
	as, bs := start(t, alice, bob, offer("f"))
	// Bob connects first, then accepts.
	rb := connAsync(t, bs, "f")
	acceptErr := make(chan error, 1)
	go func() { acceptErr <- bs.Accept(tctx(t, 10*time.Second), nil) }()
	ra := connAsync(t, as, "f")
	a, b := <-ra, <-rb
	if a.err != nil || b.err != nil {
		t.Fatalf("Conn: alice %v, bob %v", a.err, b.err)
	}
	if err := <-acceptErr; err != nil {
		t.Fatal(err)
	}
	// Either bob's report went first by itself, or the session-accept was
	// held back until it had: alice got candidate-used first.
	if !h.isReleased() || h.heldCount() > 1 {
		t.Fatalf("released %v, %d session-accepts held", h.isReleased(), h.heldCount())
	}
	if as.State() != jingle.StateActive {
		t.Errorf("alice's session is %s", as.State())
	}
	send(t, a.c, b.c, 1<<20)
}
