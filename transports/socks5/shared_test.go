package socks5_test

import (
	"encoding/xml"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// offerPorts records, per sender, the sid and the direct candidates'
// ports of each S5B offer and answer that crosses the network.
type offerPorts struct {
	mu    sync.Mutex
	sids  map[string][]string            // sender → sids, in order
	ports map[string]map[string]struct{} // sender → ports
}

func (o *offerPorts) observe(from, _ jid.JID, raw []byte) {
	var iq struct {
		Jingle *jingle.Jingle `xml:"urn:xmpp:jingle:1 jingle"`
	}
	if xml.Unmarshal(raw, &iq) != nil || iq.Jingle == nil ||
		(iq.Jingle.Action != jingle.ActionSessionInitiate && iq.Jingle.Action != jingle.ActionSessionAccept) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sids == nil {
		o.sids, o.ports = map[string][]string{}, map[string]map[string]struct{}{}
	}
	for _, c := range iq.Jingle.Contents {
		var tr socks5.Transport
		if c.Transport == nil || c.Transport.Namespace() != socks5.NS || c.Transport.Decode(&tr) != nil {
			continue
		}
		o.sids[from.String()] = append(o.sids[from.String()], tr.SID)
		for _, cand := range tr.Candidates {
			if o.ports[from.String()] == nil {
				o.ports[from.String()] = map[string]struct{}{}
			}
			o.ports[from.String()][cand.Port] = struct{}{}
		}
	}
}

func (o *offerPorts) get(from string) (sids []string, ports []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for p := range o.ports[from] {
		ports = append(ports, p)
	}
	return append([]string(nil), o.sids[from]...), ports
}

// handshakeTo connects to the streamhost at addr and asks for dst.
func handshakeTo(t *testing.T, addr, dst string) error {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	return socks5.Handshake(tctx(t, 5*time.Second), c, dst)
}

// TestSharedStreamhost: the transports of one Method offer their direct
// candidates on one listener, open while one of them negotiates. Each
// connection reaches the session whose DST.ADDR it asks for; a DST.ADDR
// nobody expects is refused; a settled session's DST.ADDRs are refused
// while the listener stays open for the others; the listener closes with
// the last transport.
func TestSharedStreamhost(t *testing.T) {
	const k = 6
	rec := &offerPorts{}
	n, alice, bob := newPair(t, loopback(), loopback(), false)
	n.SetFilter(func(from, to jid.JID, raw []byte) []byte { rec.observe(from, to, raw); return raw })
	as, bs := make([]*jingle.Session, k), make([]*jingle.Session, k)
	for i := range k {
		as[i], bs[i] = start(t, alice, bob, offer("f"))
	}
	sids, ports := rec.get(xmpptest.Alice)
	if len(sids) != k || len(ports) != 1 {
		t.Fatalf("alice offered %d sids on ports %v, want %d sids on one port", len(sids), ports, k)
	}
	addr := net.JoinHostPort("127.0.0.1", ports[0])
	aj, bj := alice.j.String(), bob.j.String()
	if err := handshakeTo(t, addr, socks5.DstAddr("no such stream", aj, bj)); !errors.Is(err, socks5.ErrRefused) {
		t.Fatalf("unknown DST.ADDR: %v, want ErrRefused", err)
	}

	// All but the last session at once.
	for i := range k - 1 {
		if err := bs[i].Accept(tctx(t, 10*time.Second), nil); err != nil {
			t.Fatal(err)
		}
	}
	ra, rb := make([]<-chan connResult, k-1), make([]<-chan connResult, k-1)
	for i := range k - 1 {
		ra[i], rb[i] = connAsync(t, as[i], "f"), connAsync(t, bs[i], "f")
	}
	for i := range k - 1 {
		a, b := <-ra[i], <-rb[i]
		if a.err != nil || b.err != nil {
			t.Fatalf("session %d: alice %v, bob %v", i, a.err, b.err)
		}
		if a.c.LocalAddr().String() != b.c.RemoteAddr().String() || a.c.RemoteAddr().String() != b.c.LocalAddr().String() {
			t.Fatalf("session %d: alice %s→%s, bob %s→%s: not one TCP connection", i, a.c.LocalAddr(), a.c.RemoteAddr(), b.c.LocalAddr(), b.c.RemoteAddr())
		}
		send(t, a.c, b.c, 64<<10)
	}
	// Settled: their routes are gone, the listener serves the last one.
	for _, sid := range sids[:k-1] {
		for _, dst := range []string{socks5.DstAddr(sid, aj, bj), socks5.DstAddr(sid, bj, aj)} {
			if err := handshakeTo(t, addr, dst); !errors.Is(err, socks5.ErrRefused) {
				t.Fatalf("DST.ADDR of a settled session: %v, want ErrRefused", err)
			}
		}
	}
	if _, bports := rec.get(xmpptest.Bob); len(bports) != 1 {
		t.Errorf("bob answered on ports %v, want one", bports)
	}

	if err := bs[k-1].Accept(tctx(t, 10*time.Second), nil); err != nil {
		t.Fatal(err)
	}
	ca, cb := conns(t, as[k-1], bs[k-1], "f")
	send(t, ca, cb, 64<<10)
	// The last transport settled: nothing listens any more.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("the streamhost still listens after the last transport settled")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialing the closed streamhost: %v, want connection refused", err)
	}
}

// TestSharedMethodBothEnds: one Method serves both ends of a session (two
// accounts in one process). The responder does not offer the host:port
// the initiator offered, and its connection to the initiator's candidate
// reaches the initiator's transport, whose own candidates its DST.ADDR
// names, not the responder's, which also accepts that hash.
func TestSharedMethodBothEnds(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	set := loopback()
	set.Logger = newLogger(t)
	m := socks5.NewMethod(set)
	alice := newSideWith(t, n, xmpptest.Alice, m, nil)
	bob := newSideWith(t, n, xmpptest.Bob, m, nil)
	as, bs := accepted(t, alice, bob, offer("f"))
	ca, cb := conns(t, as, bs, "f")
	if ca.LocalAddr().String() != cb.RemoteAddr().String() || ca.RemoteAddr().String() != cb.LocalAddr().String() {
		t.Fatalf("alice %s→%s, bob %s→%s: not one TCP connection", ca.LocalAddr(), ca.RemoteAddr(), cb.LocalAddr(), cb.RemoteAddr())
	}
	send(t, ca, cb, 64<<10)
	send(t, cb, ca, 64<<10)
}
