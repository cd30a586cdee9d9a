package ice_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// recSignal records the transport-info a link sends.
type recSignal struct {
	mu    sync.Mutex
	infos []jingle.Element
}

func (r *recSignal) TransportInfo(_ context.Context, t jingle.Element) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = append(r.infos, t)
	return nil
}

// newLink makes a link outside a session: the offerer when offer is nil.
func newLink(t *testing.T, m *ice.Method, offer *jingle.Element) (*ice.Link, error) {
	t.Helper()
	tr, err := m.NewTransport(tctx(t), jingle.TransportParams{
		SID: "sid", Content: jingle.ContentKey{Creator: jingle.CreatorInitiator, Name: "file"},
		Local: jid.MustParse(xmpptest.Alice), Peer: jid.MustParse(xmpptest.Bob),
		Initiator: offer == nil, Offer: offer, Signal: &recSignal{},
	})
	if err != nil {
		return nil, err
	}
	l := tr.(*ice.Link)
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l, nil
}

var goodCandidate = ice.Candidate{Component: "1", Foundation: "1", IP: "192.0.2.10", Port: "9",
	Priority: "2130706431", Protocol: "udp", Type: "host", Generation: "0", ID: "c1"}

// peerTransport is a peer's <transport/> in the dialect of m.
func peerTransport(t *testing.T, m *ice.Method, tr ice.Transport) jingle.Element {
	t.Helper()
	if m.Dialect == ice.DialectWebRTCDataChannel {
		return jingle.MustElement(ice.DataChannelTransport{SCTPPort: "5000", ICE: &tr})
	}
	return jingle.MustElement(tr)
}

func peerAnswer(t *testing.T, m *ice.Method, cs ...ice.Candidate) jingle.Element {
	cert, err := ice.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return peerTransport(t, m, ice.Transport{
		Ufrag: "peer", Pwd: "peerpassword0123456789",
		Fingerprints: []ice.Fingerprint{{Hash: "sha-256", Setup: ice.SetupActive, Value: cert.Fingerprint}},
		SCTPMap:      &ice.SCTPMap{Number: "5000", Protocol: "webrtc-datachannel"},
		Candidates:   cs,
	})
}

func hostileMethods(t *testing.T, edit func(*ice.Config)) []*ice.Method {
	cfg := loopbackConfig(t)
	cfg.ConnectTimeout = 2 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	return []*ice.Method{
		{Dialect: ice.DialectWebRTCDataChannel, Config: cfg},
		{Dialect: ice.DialectXEP0343, Config: cfg},
	}
}

// TestHostileCandidates: each bad candidate is refused on its own with
// ErrBadCandidate, the good one next to it is used, nothing panics.
func TestHostileCandidates(t *testing.T) {
	bad := func(edit func(c *ice.Candidate)) ice.Candidate {
		c := goodCandidate
		edit(&c)
		return c
	}
	cases := map[string]ice.Candidate{
		"ip not an address":  bad(func(c *ice.Candidate) { c.IP = "not-an-ip" }),
		"ip out of range":    bad(func(c *ice.Candidate) { c.IP = "256.1.1.1" }),
		"ip unspecified":     bad(func(c *ice.Candidate) { c.IP = "0.0.0.0" }),
		"ip multicast":       bad(func(c *ice.Candidate) { c.IP = "224.0.0.1" }),
		"ip broadcast":       bad(func(c *ice.Candidate) { c.IP = "255.255.255.255" }),
		"ip host name":       bad(func(c *ice.Candidate) { c.IP = "example.com" }),
		"ip mdns":            bad(func(c *ice.Candidate) { c.IP = "0c3e8a2e.local" }),
		"ip empty":           bad(func(c *ice.Candidate) { c.IP = "" }),
		"port zero":          bad(func(c *ice.Candidate) { c.Port = "0" }),
		"port 65536":         bad(func(c *ice.Candidate) { c.Port = "65536" }),
		"port huge":          bad(func(c *ice.Candidate) { c.Port = "99999999999999999999" }),
		"port negative":      bad(func(c *ice.Candidate) { c.Port = "-5" }),
		"port text":          bad(func(c *ice.Candidate) { c.Port = "http" }),
		"type unknown":       bad(func(c *ice.Candidate) { c.Type = "bogus" }),
		"type empty":         bad(func(c *ice.Candidate) { c.Type = "" }),
		"protocol tcp":       bad(func(c *ice.Candidate) { c.Protocol = "tcp"; c.TCPType = "passive" }),
		"protocol sctp":      bad(func(c *ice.Candidate) { c.Protocol = "sctp" }),
		"component zero":     bad(func(c *ice.Candidate) { c.Component = "0" }),
		"component 256":      bad(func(c *ice.Candidate) { c.Component = "256" }),
		"foundation empty":   bad(func(c *ice.Candidate) { c.Foundation = "" }),
		"foundation long":    bad(func(c *ice.Candidate) { c.Foundation = strings.Repeat("f", 33) }),
		"foundation space":   bad(func(c *ice.Candidate) { c.Foundation = "a b" }),
		"priority zero":      bad(func(c *ice.Candidate) { c.Priority = "0" }),
		"priority too large": bad(func(c *ice.Candidate) { c.Priority = "4294967296" }),
		"generation text":    bad(func(c *ice.Candidate) { c.Generation = "x" }),
	}
	for _, m := range hostileMethods(t, nil) {
		for name, c := range cases {
			t.Run(m.Dialect.String()+"/"+name, func(t *testing.T) {
				if _, err := c.Parse(); !errors.Is(err, ice.ErrBadCandidate) {
					t.Fatalf("Parse: %v, want ErrBadCandidate", err)
				}
				l, err := newLink(t, m, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.SetRemote(tctx(t), peerAnswer(t, m)); err != nil {
					t.Fatal(err)
				}
				good := goodCandidate
				good.IP = "192.0.2.11"
				err = l.HandleInfo(tctx(t), peerTransport(t, m, ice.Transport{Ufrag: "peer", Pwd: "peerpassword0123456789",
					Candidates: []ice.Candidate{c, good}}))
				if !errors.Is(err, ice.ErrBadCandidate) {
					t.Fatalf("HandleInfo: %v, want ErrBadCandidate", err)
				}
				if n := l.RemoteCandidateCount(); n != 1 {
					t.Fatalf("%d candidates taken, want the good one only", n)
				}
			})
		}
	}
	// Candidates of other components (RTCP) are not used, and not errors.
	rtcp := goodCandidate
	rtcp.Component = "2"
	if _, err := rtcp.Parse(); err != nil {
		t.Fatalf("component 2: %v", err)
	}
}

// TestHostileTransportInfo covers whole transport-info payloads: unknown
// credentials, a stale generation, too many candidates, too many restarts,
// the wrong element.
func TestHostileTransportInfo(t *testing.T) {
	for _, m := range hostileMethods(t, func(c *ice.Config) { c.MaxRemoteCandidates = 5; c.MaxRestarts = 2 }) {
		t.Run(m.Dialect.String(), func(t *testing.T) {
			ctx := tctx(t)
			l, err := newLink(t, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SetRemote(ctx, peerAnswer(t, m, goodCandidate)); err != nil {
				t.Fatal(err)
			}
			info := func(ufrag, pwd string, cs ...ice.Candidate) error {
				return l.HandleInfo(ctx, peerTransport(t, m, ice.Transport{Ufrag: ufrag, Pwd: pwd, Candidates: cs}))
			}
			cand := func(i int) ice.Candidate {
				c := goodCandidate
				c.IP = "192.0.2." + string(rune('0'+i%10))
				c.Port = "1" + string(rune('0'+i%10))
				return c
			}
			// An unknown ufrag without a password is no restart: refused.
			if err := info("stranger", "", cand(1)); !errors.Is(err, ice.ErrUnknownUfrag) {
				t.Fatalf("unknown ufrag: %v", err)
			}
			if n := l.RemoteCandidateCount(); n != 1 {
				t.Fatalf("%d candidates after the unknown ufrag, want 1", n)
			}
			// A new ufrag with a password restarts ICE: this side gets new
			// credentials of the next generation and sends them.
			u0, g0 := l.LocalUfrag()
			if err := info("peer2", "peer2password012345678", cand(2)); err != nil {
				t.Fatalf("restart: %v", err)
			}
			u1, g1 := l.LocalUfrag()
			if u1 == u0 || g1 != g0+1 || l.RemoteUfrag() != "peer2" {
				t.Fatalf("after the peer's restart: local %s/%d (was %s/%d), remote %s", u1, g1, u0, g0, l.RemoteUfrag())
			}
			// Late candidates of the old generation are refused.
			if err := info("peer", "", cand(3)); !errors.Is(err, ice.ErrUnknownUfrag) {
				t.Fatalf("old ufrag: %v", err)
			}
			// Too many candidates: the limit holds.
			var many []ice.Candidate
			for i := range 50 {
				many = append(many, cand(i))
			}
			if err := info("peer2", "", many...); !errors.Is(err, ice.ErrTooManyCandidates) {
				t.Fatalf("50 candidates: %v", err)
			}
			if n := l.RemoteCandidateCount(); n != 5 {
				t.Fatalf("%d candidates taken, limit 5", n)
			}
			// Restarts are bounded.
			if err := info("peer3", "peer3password012345678"); err != nil {
				t.Fatalf("second restart: %v", err)
			}
			if err := info("peer4", "peer4password012345678"); !errors.Is(err, ice.ErrTooManyRestarts) {
				t.Fatalf("third restart: %v", err)
			}
			// Elements of another method, or malformed, are errors.
			other := jingle.MustElement(jingletest.Description{Label: "x"})
			if err := l.HandleInfo(ctx, other); err == nil {
				t.Fatal("foreign element accepted")
			}
			if m.Dialect == ice.DialectWebRTCDataChannel {
				bad := jingle.MustElement(ice.DataChannelTransport{MaxMessageSize: "lots", ICE: &ice.Transport{}})
				if err := l.HandleInfo(ctx, bad); err == nil {
					t.Fatal("max-message-size='lots' accepted")
				}
			}
		})
	}
}

// TestHostileOffers: offers a data channel cannot be made of are refused
// when the transport is created; an answer without fingerprint makes Dial
// fail with ErrTransportFailed.
func TestHostileOffers(t *testing.T) {
	for _, m := range hostileMethods(t, nil) {
		t.Run(m.Dialect.String(), func(t *testing.T) {
			noFP := peerTransport(t, m, ice.Transport{Ufrag: "u", Pwd: "passwordpassword0123",
				SCTPMap: &ice.SCTPMap{Number: "5000", Protocol: "webrtc-datachannel"}, Candidates: []ice.Candidate{goodCandidate}})
			if _, err := newLink(t, m, &noFP); !errors.Is(err, jingle.ErrTransportFailed) {
				t.Errorf("offer without fingerprint: %v", err)
			}
			if m.Dialect == ice.DialectXEP0343 {
				cert, _ := ice.NewCertificate()
				rtp := jingle.MustElement(ice.Transport{Ufrag: "u", Pwd: "passwordpassword0123",
					Fingerprints: []ice.Fingerprint{{Hash: "sha-256", Setup: ice.SetupActPass, Value: cert.Fingerprint}}})
				if _, err := newLink(t, m, &rtp); !errors.Is(err, jingle.ErrTransportFailed) {
					t.Errorf("offer without sctpmap: %v", err)
				}
			}
			l, err := newLink(t, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SetRemote(tctx(t), noFP); err == nil {
				t.Error("answer without fingerprint accepted")
			}
			if _, err := l.Dial(tctx(t)); !errors.Is(err, jingle.ErrTransportFailed) {
				t.Errorf("Dial after an answer without fingerprint: %v", err)
			}
		})
	}
}

var candidateRE = regexp.MustCompile(`<candidate [^>]*/>|<candidate [^>]*></candidate>`)

// TestNoCandidates: when no candidate reaches the other side, Dial fails
// with ErrTransportFailed once Config.ConnectTimeout has passed, and the
// initiator, with no other method, ends the session with failed-transport.
func TestNoCandidates(t *testing.T) {
	for _, ns := range []string{ice.NSWebRTCDataChannel, ice.NSICEUDP} {
		t.Run(ns, func(t *testing.T) {
			n := xmpptest.NewNetwork(t)
			n.SetFilter(func(from, to jid.JID, st []byte) []byte {
				return candidateRE.ReplaceAll(st, nil)
			})
			cfg := loopbackConfig(t)
			cfg.ConnectTimeout = 3 * time.Second
			alice := newSide(t, n, xmpptest.Alice, cfg)
			bob := newSide(t, n, xmpptest.Bob, cfg)
			ctx := tctx(t)
			as, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), jingle.Offer{
				Name: "file", Description: jingletest.Desc("file"), Transports: []string{ns},
			})
			if err != nil {
				t.Fatal(err)
			}
			bs := incoming(t, bob)
			if err := bs.Accept(ctx, nil); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { _, err := bs.Conn(ctx, "file"); errc <- err }()
			if _, err := as.Conn(ctx, "file"); !errors.Is(err, jingle.ErrTransportFailed) {
				t.Fatalf("initiator: %v, want ErrTransportFailed", err)
			}
			if err := <-errc; err == nil {
				t.Fatal("responder connected without candidates")
			}
			<-as.Done()
			if r := as.Reason(); r == nil || r.Condition != jingle.ReasonFailedTransport {
				t.Fatalf("session ended with %v, want failed-transport", r)
			}
		})
	}
}

// TestGarbageDuringTransfer: transport-info with bad candidates, unknown
// credentials and a foreign element, injected while data flows, is
// answered and changes nothing.
func TestGarbageDuringTransfer(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	alice := newSide(t, n, xmpptest.Alice, loopbackConfig(t))
	bob := newSide(t, n, xmpptest.Bob, loopbackConfig(t))
	as, _, ca, cb := session(t, alice, bob, xmpptest.Bob, ice.NSICEUDP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, payload := range []string{
			`<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='x'><candidate component='1' foundation='1' ip='999.1.1.1' port='99999' priority='1' protocol='udp' type='nope'/></transport>`,
			`<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'><remote-candidate component='1' ip='::1' port='1'/><gathering-complete/></transport>`,
			`<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>` + strings.Repeat(`<candidate component='1' foundation='1' ip='192.0.2.1' port='1' priority='1' protocol='udp' type='host'/>`, 200) + `</transport>`,
			`<transport xmlns='urn:example:other'/>`,
		} {
			raw := `<iq type='set' id='g' from='` + xmpptest.Alice + `' to='` + xmpptest.Bob + `'><jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='` +
				as.SID() + `'><content creator='initiator' name='file'>` + payload + `</content></jingle></iq>`
			if err := n.Inject(tctx(t), jid.MustParse(xmpptest.Bob), raw); err != nil {
				t.Error(err)
			}
		}
	}()
	data := randomBytes(t, 4<<20)
	transfer(t, ca, cb, data)
	<-done
	transfer(t, cb, ca, data[:1<<20])
}
