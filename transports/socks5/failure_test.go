package socks5_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// TestProxyOnly: with NoDirect on both sides the data goes through the
// proxy. Alice's proxy is configured by JID only (its address comes from
// the streamhost query); bob does not offer the same proxy again. Bob
// connects to alice's proxy candidate, alice activates it and says so.
func TestProxyOnly(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	px := newFakeProxy(t, n, false)
	as, bs := loopback(), loopback()
	as.NoDirect, bs.NoDirect = true, true
	as.Proxies = []socks5.Proxy{{JID: px.j}}
	bs.Proxies = []socks5.Proxy{px.proxy()}
	rec := &recorder{}
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte { rec.observe(from, to, raw); return raw })
	alice, bob := newSide(t, n, xmpptest.Alice, as, nil), newSide(t, n, xmpptest.Bob, bs, nil)

	sa, sb := accepted(t, alice, bob, offer("f"))
	ca, cb := conns(t, sa, sb, "f")
	ini, acc := rec.offer(jingle.ActionSessionInitiate), rec.offer(jingle.ActionSessionAccept)
	if len(ini.Candidates) != 1 || ini.Candidates[0].Type != socks5.TypeProxy || ini.Candidates[0].JID != fakeProxyJID {
		t.Fatalf("alice offered %+v", ini.Candidates)
	}
	if ini.DstAddr != socks5.DstAddr(ini.SID, xmpptest.Alice, xmpptest.Bob) {
		t.Errorf("alice's dstaddr %q", ini.DstAddr)
	}
	if p, _ := ini.Candidates[0].PriorityValue(); p != socks5.Priority(socks5.TypeProxy, 65535) {
		t.Errorf("proxy priority %d", p)
	}
	if len(acc.Candidates) != 0 || acc.DstAddr != "" {
		t.Errorf("bob offered %+v (dstaddr %q): the host/port alice offered must not be offered again", acc.Candidates, acc.DstAddr)
	}
	var activated *socks5.CID
	for _, r := range rec.reports(xmpptest.Alice) {
		if r.Activated != nil {
			activated = r.Activated
		}
	}
	if activated == nil || activated.CID != ini.Candidates[0].CID {
		t.Errorf("alice's <activated/>: %+v", activated)
	}
	if rb := rec.reports(xmpptest.Bob); len(rb) != 1 || rb[0].CandidateUsed == nil || rb[0].CandidateUsed.CID != ini.Candidates[0].CID {
		t.Errorf("bob's reports %+v", rb)
	}
	send(t, ca, cb, 1<<20)
	send(t, cb, ca, 1000)
	if px.activations() != 1 || px.bytesRelayed() != 1<<20+1000 {
		t.Errorf("%d activations, %d bytes relayed", px.activations(), px.bytesRelayed())
	}
}

// TestProxyActivationFails: the proxy refuses the activation; alice sends
// proxy-error, both transports fail, and the session falls back to the
// next method.
func TestProxyActivationFails(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	px := newFakeProxy(t, n, true)
	as, bs := loopback(), loopback()
	as.NoDirect, bs.NoDirect = true, true
	as.Proxies = []socks5.Proxy{px.proxy()}
	rec := &recorder{}
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte { rec.observe(from, to, raw); return raw })
	x := jingletest.NewExchange()
	alice, bob := newSide(t, n, xmpptest.Alice, as, x), newSide(t, n, xmpptest.Bob, bs, x)

	sa, sb := accepted(t, alice, bob, offer("f", socks5.NS, jingletest.PipeNS))
	da, db := dialAsync(t, sa, "f"), dialAsync(t, sb, "f")
	wantFailed(t, "alice", <-da)
	wantFailed(t, "bob", <-db)
	proxyErr := false
	for _, r := range rec.reports(xmpptest.Alice) {
		proxyErr = proxyErr || r.ProxyError != nil
	}
	if !proxyErr {
		t.Error("alice sent no proxy-error")
	}
	ca, cb := conns(t, sa, sb, "f")
	if ns, _ := sa.TransportNamespace("f"); ns != jingletest.PipeNS {
		t.Errorf("alice's transport is %s after the fallback", ns)
	}
	go ca.Write([]byte("x")) // a net.Pipe: the write waits for the read
	b := make([]byte, 1)
	if _, err := cb.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("read %q, %v", b, err)
	}
}

// TestAllUnreachable: when no candidate works on either side, Dial fails
// with ErrTransportFailed on both sides, well within the negotiation
// timeout, and only the initiator ends the session.
func TestAllUnreachable(t *testing.T) {
	none := loopback()
	none.NoDirect = true
	for _, c := range []struct {
		name   string
		as, bs socks5.Settings
	}{
		{"no candidates", none, none},
		{"dead ports", unreachable(), unreachable()},
		{"dead port and no candidates", unreachable(), none},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.as.NegotiationTimeout, c.bs.NegotiationTimeout = 5*time.Second, 5*time.Second
			rec := &recorder{}
			n, alice, bob := newPair(t, c.as, c.bs, false)
			n.SetFilter(func(from, to jid.JID, raw []byte) []byte { rec.observe(from, to, raw); return raw })
			sa, sb := accepted(t, alice, bob, offer("f"))
			begin := time.Now()
			da, db := dialAsync(t, sa, "f"), dialAsync(t, sb, "f")
			wantFailed(t, "alice", <-da)
			wantFailed(t, "bob", <-db)
			if d := time.Since(begin); d > 4*time.Second {
				t.Errorf("failing took %v", d)
			}
			for _, who := range []string{xmpptest.Alice, xmpptest.Bob} {
				if r := rec.reports(who); len(r) != 1 || r[0].CandidateError == nil {
					t.Errorf("%s reported %+v, want candidate-error", who, r)
				}
			}
			// Through the session: the initiator ends it, the responder
			// waits for that.
			ra, rb := connAsync(t, sa, "f"), connAsync(t, sb, "f")
			if r := <-ra; !errors.Is(r.err, jingle.ErrTransportFailed) {
				t.Errorf("alice's Conn: %v", r.err)
			}
			if r := <-rb; r.err == nil {
				t.Error("bob's Conn succeeded")
			}
			<-sb.Done()
			if r := sb.Reason(); r == nil || r.Condition != jingle.ReasonFailedTransport {
				t.Errorf("bob's session ended with %v, want failed-transport from alice", r)
			}
		})
	}
}

// TestSilentPeer: a peer whose report never arrives makes Dial fail after
// the negotiation timeout, not hang. (Bob has alice's report and may
// settle; his own report then times out unanswered.)
func TestSilentPeer(t *testing.T) {
	as, bs := loopback(), loopback()
	as.NegotiationTimeout, bs.NegotiationTimeout = time.Second, time.Second
	n, alice, bob := newPair(t, as, bs, false)
	n.SetFilter(func(from, _ jid.JID, raw []byte) []byte {
		if from.String() == xmpptest.Bob && isReport(raw) {
			return nil
		}
		return raw
	})
	sa, sb := accepted(t, alice, bob, offer("f"))
	begin := time.Now()
	da, db := dialAsync(t, sa, "f"), dialAsync(t, sb, "f")
	wantFailed(t, "alice", <-da)
	if d := time.Since(begin); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("failed after %v, want about the 1s negotiation timeout", d)
	}
	select {
	case r := <-db:
		if r.err == nil {
			r.c.Close()
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bob's Dial hangs")
	}
}

// TestHostileInfo: transport-info naming a candidate that is not ours,
// activating another candidate, or for another stream makes the
// transport fail (and the session fall back) instead of hanging.
func TestHostileInfo(t *testing.T) {
	for _, c := range []struct {
		name string
		body string // inside <transport/>
		sid  string // transport sid, "" for the real one
	}{
		{"unknown cid", `<candidate-used cid='no-such-candidate'/>`, ""},
		{"empty cid", `<candidate-used cid=''/>`, ""},
		{"proxy-error out of the blue", `<candidate-error/><proxy-error/>`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			n, alice, bob := newPair(t, loopback(), unreachable(), true)
			n.SetFilter(func(from, to jid.JID, raw []byte) []byte { rec.observe(from, to, raw); return raw })
			sa, sb := accepted(t, alice, bob, offer("f", socks5.NS, jingletest.PipeNS))
			// Alice starts checking bob's (dead) candidate at once; bob
			// stays silent until the forged report arrived.
			ra := connAsync(t, sa, "f")
			sid := c.sid
			if sid == "" {
				sid = rec.offer(jingle.ActionSessionInitiate).SID
			}
			forged := fmt.Sprintf(`<iq type='set' id='forged' from='%s' to='%s'><jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='%s'><content creator='initiator' name='f'><transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='%s'>%s</transport></content></jingle></iq>`,
				xmpptest.Bob, xmpptest.Alice, sa.SID(), sid, c.body)
			begin := time.Now()
			if err := n.Inject(tctx(t, 5*time.Second), alice.j, forged); err != nil {
				t.Fatal(err)
			}
			a := <-ra
			if a.err != nil {
				t.Fatalf("alice's Conn: %v", a.err)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("fell back after %v", d)
			}
			if ns, _ := sa.TransportNamespace("f"); ns != jingletest.PipeNS {
				t.Fatalf("alice's transport is %s, want the fallback", ns)
			}
			rb := connAsync(t, sb, "f")
			b := <-rb
			if b.err != nil {
				t.Fatal(b.err)
			}
			go a.c.Write([]byte("ok"))
			buf := make([]byte, 2)
			if _, err := b.c.Read(buf); err != nil || string(buf) != "ok" {
				t.Fatalf("read %q, %v", buf, err)
			}
		})
	}
}

// TestDialCancel: Dial honours its context and reports the context's
// error, not a transport failure (which would make the session fall
// back).
func TestDialCancel(t *testing.T) {
	_, alice, bob := newPair(t, loopback(), loopback(), false)
	sa, _ := start(t, alice, bob, offer("f"))
	tr, _ := sa.Transport("f")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := tr.(jingle.StreamTransport).Dial(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jingle.ErrTransportFailed) {
		t.Fatalf("Dial before session-accept: %v", err)
	}
}

// TestSilentStreamhost: a candidate whose host accepts the TCP connection
// but never answers the SOCKS5 greeting costs ConnectTimeout, then the
// transport fails on both sides well before the negotiation timeout.
func TestSilentStreamhost(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // never accepts: the kernel does
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	_, silentPort, _ := net.SplitHostPort(silent.Addr().String())
	as, bs := unreachable(), unreachable()
	as.ConnectTimeout, bs.ConnectTimeout = 500*time.Millisecond, 500*time.Millisecond
	as.NegotiationTimeout, bs.NegotiationTimeout = 20*time.Second, 20*time.Second
	n, alice, bob := newPair(t, as, bs, false)
	// Bob's candidate, as alice sees it, points to the silent listener.
	n.SetFilter(func(from, _ jid.JID, raw []byte) []byte {
		if from.String() == xmpptest.Bob && isAction(raw, jingle.ActionSessionAccept) {
			return regexp.MustCompile(`port="\d+"`).ReplaceAll(raw, []byte(`port="`+silentPort+`"`))
		}
		return raw
	})
	sa, sb := accepted(t, alice, bob, offer("f"))
	begin := time.Now()
	da, db := dialAsync(t, sa, "f"), dialAsync(t, sb, "f")
	wantFailed(t, "alice", <-da)
	wantFailed(t, "bob", <-db)
	if d := time.Since(begin); d < 400*time.Millisecond || d > 5*time.Second {
		t.Errorf("failed after %v, want about the 500ms connect timeout", d)
	}
}
