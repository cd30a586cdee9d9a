package jmi_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/testwait"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/jmi"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// jmiParty is one resource with a JMI whose incoming proposals go to a
// channel.
type jmiParty struct {
	addr jid.JID
	xs   *xmpp.Session
	jmi  *jmi.Manager
	in   chan *jmi.Incoming
}

func newJMIParty(t *testing.T, n *xmpptest.Network, addr string, onPropose func(context.Context, *jmi.Incoming)) *jmiParty {
	t.Helper()
	p := &jmiParty{addr: jid.MustParse(addr), in: make(chan *jmi.Incoming, 8)}
	p.jmi = &jmi.Manager{OnPropose: func(ctx context.Context, in *jmi.Incoming) {
		p.in <- in
		if onPropose != nil {
			onPropose(ctx, in)
		}
	}}
	p.xs = jingletest.Join(t, n, addr, mux.New(stanza.NSClient, p.jmi.Handler()), p.jmi)
	p.jmi.SetStream(p.xs)
	return p
}

func audioDesc() jingle.Element {
	return jingle.MustElement(struct {
		XMLName xml.Name `xml:"urn:xmpp:jingle:apps:rtp:1 description"`
		Media   string   `xml:"media,attr"`
	}{Media: "audio"})
}

func recvIncoming(t *testing.T, p *jmiParty) *jmi.Incoming {
	t.Helper()
	return testwait.Recv(t, p.in, 5*time.Second, p.addr.String()+"'s proposal")
}

func waitDone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	testwait.Recv(t, ch, 5*time.Second, what+" done")
}

// TestJMIProceed: propose to the bare JID, ringing, proceed; the outgoing
// side learns the proceeding resource and both see the same id.
func TestJMIProceed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bob := newJMIParty(t, n, xmpptest.Bob, func(ctx context.Context, in *jmi.Incoming) {
		_ = in.Ringing(ctx)
		_ = in.Proceed(ctx)
	})
	alice := newJMIParty(t, n, xmpptest.Alice, nil)
	out, err := alice.jmi.Propose(ctx, bob.addr.Bare(), "", audioDesc())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := out.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, out.Ringing(), "ringing")
	in := recvIncoming(t, bob)
	if !peer.Equal(bob.addr) || in.ID != out.ID() || !in.From.Equal(alice.addr) || len(in.Descriptions) != 1 {
		t.Errorf("proceeded by %s; incoming %+v; id %s", peer, in, out.ID())
	}
	if got := bob.jmi.Proceeded(alice.addr, out.ID()); got != in {
		t.Errorf("Proceeded = %v", got)
	}
	if got := bob.jmi.Proceeded(jid.MustParse("carol@example.net/c"), out.ID()); got != nil {
		t.Error("Proceeded matched another caller")
	}
}

// TestJMIRetract: the caller retracts before any answer; the callee's
// proposal ends with ErrRetracted and Proceed then fails.
func TestJMIRetract(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bob := newJMIParty(t, n, xmpptest.Bob, nil)
	alice := newJMIParty(t, n, xmpptest.Alice, nil)
	out, err := alice.jmi.Propose(ctx, bob.addr.Bare(), "", audioDesc())
	if err != nil {
		t.Fatal(err)
	}
	in := recvIncoming(t, bob)
	if ok, err := out.Retract(ctx, nil); !ok || err != nil {
		t.Fatalf("retract: %v %v", ok, err)
	}
	waitDone(t, in.Done(), "incoming")
	if !errors.Is(in.Err(), jmi.ErrRetracted) {
		t.Errorf("incoming ended with %v", in.Err())
	}
	if err := in.Proceed(ctx); err == nil {
		t.Error("proceed after retract succeeded")
	}
	if _, err := out.Wait(ctx); !errors.Is(err, jmi.ErrRetracted) {
		t.Errorf("outgoing: %v", err)
	}
}

// TestJMIReject: the callee rejects; the caller's Wait returns ErrRejected
// and the reason.
func TestJMIReject(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bob := newJMIParty(t, n, xmpptest.Bob, func(ctx context.Context, in *jmi.Incoming) {
		_ = in.Reject(ctx, &jingle.Reason{Condition: jingle.ReasonDecline, Text: "no"})
	})
	alice := newJMIParty(t, n, xmpptest.Alice, nil)
	out, err := alice.jmi.Propose(ctx, bob.addr.Bare(), "", audioDesc())
	if err != nil {
		t.Fatal(err)
	}
	_, err = out.Wait(ctx)
	var r *jingle.Reason
	if !errors.Is(err, jmi.ErrRejected) || !errors.As(err, &r) || r.Condition != jingle.ReasonDecline {
		t.Fatalf("Wait: %v", err)
	}
	in := recvIncoming(t, bob)
	if !errors.Is(in.Err(), jmi.ErrRejected) {
		t.Errorf("incoming: %v", in.Err())
	}
}

// TestJMIOtherResource: bob has two resources; both ring; b2 proceeds; the
// server's carbon of that proceed reaches b1, which stops ringing
// (ErrAnsweredElsewhere); the caller talks to b2.
func TestJMIOtherResource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	const b2 = "bob@example.net/b2"
	b1 := newJMIParty(t, n, xmpptest.Bob, nil)
	bob2 := newJMIParty(t, n, b2, nil)
	alice := newJMIParty(t, n, xmpptest.Alice, nil)
	// The in-memory server has no carbons: the filter sends b1 a carbon
	// of what b2 sends, as XEP-0280 servers do.
	var wg sync.WaitGroup
	defer wg.Wait()
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if from.String() == b2 && strings.Contains(string(st), "urn:xmpp:jingle-message:0") {
			carbon := fmt.Sprintf(`<message xmlns='jabber:client' from='bob@example.net' to='%s' type='chat'>
<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>%s</forwarded></sent></message>`,
				xmpptest.Bob, strings.Replace(string(st), "<message", "<message from='"+b2+"'", 1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.Inject(context.Background(), b1.addr, carbon); err != nil {
					t.Errorf("inject carbon: %v", err)
				}
			}()
		}
		return st
	})
	out, err := alice.jmi.Propose(ctx, b1.addr.Bare(), "", audioDesc())
	if err != nil {
		t.Fatal(err)
	}
	in1 := recvIncoming(t, b1)
	in2 := recvIncoming(t, bob2)
	if err := in2.Proceed(ctx); err != nil {
		t.Fatal(err)
	}
	peer, err := out.Wait(ctx)
	if err != nil || !peer.Equal(bob2.addr) {
		t.Fatalf("Wait: %s, %v", peer, err)
	}
	waitDone(t, in1.Done(), "b1's proposal")
	if !errors.Is(in1.Err(), jmi.ErrAnsweredElsewhere) {
		t.Errorf("b1: %v", in1.Err())
	}
}

// TestJMITieBreak: alice and bob propose to each other at once. The lower
// id (alice's) wins: alice rejects bob's with <tie-break/>, bob retracts
// his own and is asked about alice's, which he proceeds.
func TestJMITieBreak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bob := newJMIParty(t, n, xmpptest.Bob, func(ctx context.Context, in *jmi.Incoming) {
		_ = in.Proceed(ctx)
	})
	alice := newJMIParty(t, n, xmpptest.Alice, func(ctx context.Context, in *jmi.Incoming) {
		t.Errorf("alice was asked about %s's proposal %s", in.From, in.ID)
	})
	// Hold each propose until both were sent, so that they cross.
	var sent sync.WaitGroup
	sent.Add(2)
	var mu sync.Mutex
	var rejects, retracts int
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		s := string(st)
		if strings.Contains(s, "<propose") {
			sent.Done()
			sent.Wait()
		}
		mu.Lock()
		if strings.Contains(s, "tie-break") && strings.Contains(s, "<reject") {
			rejects++
		}
		if strings.Contains(s, "tie-break") && strings.Contains(s, "<retract") {
			retracts++
		}
		mu.Unlock()
		return st
	})
	const low, high = "0a0a0a0a-0000-4000-8000-000000000000", "fbfbfbfb-0000-4000-8000-000000000000"
	var outA, outB *jmi.Outgoing
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); outA, errA = alice.jmi.Propose(ctx, bob.addr.Bare(), low, audioDesc()) }()
	go func() { defer wg.Done(); outB, errB = bob.jmi.Propose(ctx, alice.addr.Bare(), high, audioDesc()) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if _, err := outB.Wait(ctx); !errors.Is(err, jmi.ErrTieBreakLost) {
		t.Errorf("bob's proposal: %v, want ErrTieBreakLost", err)
	}
	peer, err := outA.Wait(ctx)
	if err != nil || !peer.Equal(bob.addr) {
		t.Fatalf("alice's proposal: %s, %v", peer, err)
	}
	in := recvIncoming(t, bob)
	if in.ID != low {
		t.Errorf("bob was asked about %s", in.ID)
	}
	// Let the last messages through before counting.
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if rejects != 1 || retracts != 1 {
		t.Errorf("%d tie-break rejects and %d retracts, want 1 and 1", rejects, retracts)
	}
}

// TestJMIHostile: messages that must change nothing — a proceed from a JID
// not proposed to, a retract for an unknown id or from another JID, a
// forged carbon, a propose without description or with too many, a huge
// one — are ignored without a panic, and the real answer still works.
func TestJMIHostile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := xmpptest.NewNetwork(t)
	bob := newJMIParty(t, n, xmpptest.Bob, nil)
	alice := newJMIParty(t, n, xmpptest.Alice, nil)
	out, err := alice.jmi.Propose(ctx, bob.addr.Bare(), "", audioDesc())
	if err != nil {
		t.Fatal(err)
	}
	in := recvIncoming(t, bob)
	id := out.ID()
	msg := func(from, to, body string) string {
		return fmt.Sprintf(`<message xmlns='jabber:client' from='%s' to='%s' type='chat'>%s</message>`, from, to, body)
	}
	big := strings.Repeat("<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>", 400)
	many := strings.Repeat("<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>", 20)
	for _, c := range []struct {
		name, to, raw string
	}{
		{"proceed from carol", xmpptest.Alice, msg("carol@example.net/c", xmpptest.Alice, `<proceed xmlns='urn:xmpp:jingle-message:0' id='`+id+`'/>`)},
		{"reject from carol", xmpptest.Alice, msg("carol@example.net/c", xmpptest.Alice, `<reject xmlns='urn:xmpp:jingle-message:0' id='`+id+`'/>`)},
		{"proceed from bob's bare JID", xmpptest.Alice, msg("bob@example.net", xmpptest.Alice, `<proceed xmlns='urn:xmpp:jingle-message:0' id='`+id+`'/>`)},
		{"proceed for an unknown id", xmpptest.Alice, msg(xmpptest.Bob, xmpptest.Alice, `<proceed xmlns='urn:xmpp:jingle-message:0' id='nope'/>`)},
		{"retract for an unknown id", xmpptest.Bob, msg(xmpptest.Alice, xmpptest.Bob, `<retract xmlns='urn:xmpp:jingle-message:0' id='nope'/>`)},
		{"retract from carol", xmpptest.Bob, msg("carol@example.net/c", xmpptest.Bob, `<retract xmlns='urn:xmpp:jingle-message:0' id='`+id+`'/>`)},
		{"forged carbon", xmpptest.Bob, msg("carol@example.net", xmpptest.Bob, `<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>`+
			`<message xmlns='jabber:client' from='bob@example.net/x' to='`+xmpptest.Alice+`' type='chat'><proceed xmlns='urn:xmpp:jingle-message:0' id='`+id+`'/></message></forwarded></sent>`)},
		{"propose without description", xmpptest.Bob, msg("carol@example.net/c", xmpptest.Bob, `<propose xmlns='urn:xmpp:jingle-message:0' id='x1'/>`)},
		{"propose with too many descriptions", xmpptest.Bob, msg("carol@example.net/c", xmpptest.Bob, `<propose xmlns='urn:xmpp:jingle-message:0' id='x2'>`+many+`</propose>`)},
		{"huge propose", xmpptest.Bob, msg("carol@example.net/c", xmpptest.Bob, `<propose xmlns='urn:xmpp:jingle-message:0' id='x3'>`+big+`</propose>`)},
		{"propose without id", xmpptest.Bob, msg("carol@example.net/c", xmpptest.Bob, `<propose xmlns='urn:xmpp:jingle-message:0'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>`)},
		{"malformed reason", xmpptest.Alice, msg(xmpptest.Bob, xmpptest.Alice, `<reject xmlns='urn:xmpp:jingle-message:0' id='nope'><reason xmlns='urn:xmpp:jingle:1'><text>x</text><text>y</text></reason></reject>`)},
	} {
		if err := n.Inject(ctx, jid.MustParse(c.to), c.raw); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case <-out.Done():
		t.Fatal("a hostile message ended alice's proposal")
	case <-in.Done():
		t.Fatalf("a hostile message ended bob's proposal: %v", in.Err())
	case x := <-bob.in:
		t.Fatalf("a hostile propose was delivered: %+v", x)
	default:
	}
	if err := in.Proceed(ctx); err != nil {
		t.Fatal(err)
	}
	if peer, err := out.Wait(ctx); err != nil || !peer.Equal(bob.addr) {
		t.Fatalf("Wait: %s %v", peer, err)
	}
}
