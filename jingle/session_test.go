package jingle_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/goroutines"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/xmpptest"
)

const pipe2NS = "urn:jinglekit:test:transport:pipe2:0"

// side is one party of a test: its XMPP session, Jingle manager, test
// application and transports.
type side struct {
	xs     *xmpp.Session
	m      *jingle.Manager
	app    *jingletest.App
	pipe   *jingletest.PipeMethod
	pipe2  *jingletest.PipeMethod
	broken *jingletest.PipeMethod
}

func newSide(t *testing.T, n *xmpptest.Network, addr string, x *jingletest.Exchange, lim jingle.Limits) *side {
	t.Helper()
	return wireSide(t, addr, x, lim, func(h xmpp.Handler) *xmpp.Session {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		xs, err := n.Client(ctx, jid.MustParse(addr), h)
		if err != nil {
			t.Fatal(err)
		}
		return xs
	})
}

// wireSide builds one party: a Manager with the test application and
// transports, served on the session connect returns.
func wireSide(t *testing.T, addr string, x *jingletest.Exchange, lim jingle.Limits, connect func(xmpp.Handler) *xmpp.Session) *side {
	t.Helper()
	sd := &side{
		m:      &jingle.Manager{Limits: lim},
		app:    jingletest.NewApp(),
		pipe:   &jingletest.PipeMethod{X: x},
		pipe2:  &jingletest.PipeMethod{X: x, NS: pipe2NS},
		broken: &jingletest.PipeMethod{X: x, NS: jingletest.BrokenNS, Fail: true},
	}
	sd.m.RegisterApplication(sd.app)
	sd.m.RegisterTransport(sd.pipe)
	sd.m.RegisterTransport(sd.pipe2)
	sd.m.RegisterTransport(sd.broken)
	xs := connect(mux.New(stanza.NSClient, sd.m.Handler()))
	sd.xs = xs
	sd.m.SetStream(xs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sd.m.Close(ctx); err != nil {
			t.Errorf("closing manager of %s: %v", addr, err)
		}
	})
	return sd
}

func newPair(t *testing.T, lim jingle.Limits) (n *xmpptest.Network, alice, bob *side) {
	t.Helper()
	n = xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	return n, newSide(t, n, xmpptest.Alice, x, lim), newSide(t, n, xmpptest.Bob, x, lim)
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func offer(name string, transports ...string) jingle.Offer {
	if len(transports) == 0 {
		transports = []string{jingletest.PipeNS}
	}
	return jingle.Offer{Name: name, Description: jingletest.Desc(name), Transports: transports}
}

func nextEvent(t *testing.T, s *jingle.Session, want jingle.Action) jingle.Event {
	t.Helper()
	ev, err := s.NextEvent(tctx(t))
	if err != nil {
		t.Fatalf("waiting for %s: %v", want, err)
	}
	if ev.Action != want {
		t.Fatalf("got event %s, want %s", ev.Action, want)
	}
	return ev
}

func incoming(t *testing.T, sd *side) *jingle.Session {
	t.Helper()
	select {
	case s := <-sd.app.Sessions:
		nextEvent(t, s, jingle.ActionSessionInitiate)
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no incoming session")
		return nil
	}
}

func wantState(t *testing.T, want jingle.State, ss ...*jingle.Session) {
	t.Helper()
	for _, s := range ss {
		if got := s.State(); got != want {
			t.Fatalf("%s's session is %s, want %s", s.Local(), got, want)
		}
	}
}

// roundTrip writes on one side's stream and reads it on the other's.
func roundTrip(t *testing.T, a, b *jingle.Session, name, msg string) {
	t.Helper()
	ca, err := a.Conn(tctx(t), name)
	if err != nil {
		t.Fatalf("%s: conn %s: %v", a.Local(), name, err)
	}
	cb, err := b.Conn(tctx(t), name)
	if err != nil {
		t.Fatalf("%s: conn %s: %v", b.Local(), name, err)
	}
	errc := make(chan error, 1)
	go func() { _, err := io.WriteString(ca, msg); errc <- err }()
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(cb, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if string(buf) != msg {
		t.Fatalf("read %q, want %q", buf, msg)
	}
}

func TestSessionLifecycle(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	lifecycle(t, alice, bob)
}

// lifecycle runs a session through every step of the Jingle core and checks
// that both sides agree on its state at each one.
func lifecycle(t *testing.T, alice, bob *side) {
	ctx := tctx(t)

	as, err := alice.m.Initiate(ctx, bob.xs.LocalAddr(), offer("c1", jingletest.PipeNS))
	if err != nil {
		t.Fatal(err)
	}
	bs := incoming(t, bob)
	wantState(t, jingle.StatePending, as, bs)
	if bs.SID() != as.SID() || !bs.Peer().Equal(alice.xs.LocalAddr()) || bs.IsInitiator() {
		t.Fatalf("bob's view: sid %s peer %s initiator %v", bs.SID(), bs.Peer(), bs.IsInitiator())
	}

	// session-accept
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, as, jingle.ActionSessionAccept)
	wantState(t, jingle.StateActive, as, bs)
	at := alice.pipe.Transports()[0]
	if r := at.Remote(); len(r) != 1 || !strings.Contains(r[0].String(), `side="responder"`) {
		t.Fatalf("alice's transport got remote %v, want bob's answer", r)
	}
	roundTrip(t, as, bs, "c1", "hello over c1")

	// session-info: understood payload, ping, and a payload nobody knows.
	if err := as.Info(ctx, jingletest.Nudge()); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, bs, jingle.ActionSessionInfo)
	if err := as.Info(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	unknown := jingle.MustElement(struct {
		XMLName xml.Name `xml:"urn:example:unknown what"`
	}{})
	err = bs.Info(ctx, unknown)
	if !errors.Is(err, jingle.ErrUnsupportedInfo) || !errors.Is(err, stanza.Error{Condition: stanza.FeatureNotImplemented}) {
		t.Fatalf("unknown session-info: got %v, want feature-not-implemented + unsupported-info", err)
	}

	// transport-info from each side reaches the other's transport.
	bt := bob.pipe.Transports()[0]
	if err := at.Params().Signal.TransportInfo(ctx, at.Local()); err != nil {
		t.Fatal(err)
	}
	if err := bt.Params().Signal.TransportInfo(ctx, bt.Local()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(at.Infos()) == 1 && len(bt.Infos()) == 1 })

	// content-add / content-accept
	if err := as.AddContent(ctx, offer("c2", jingletest.PipeNS)); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, bs, jingle.ActionContentAdd); ev.Content != "c2" {
		t.Fatalf("content-add for %q", ev.Content)
	}
	if err := bs.AcceptContent(ctx, "c2", nil); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, as, jingle.ActionContentAccept)
	if len(as.Contents()) != 2 || len(bs.Contents()) != 2 {
		t.Fatalf("contents: alice %d, bob %d, want 2", len(as.Contents()), len(bs.Contents()))
	}
	roundTrip(t, as, bs, "c2", "hello over c2")

	// transport-replace / transport-accept
	if err := as.ReplaceTransport(ctx, "c1", pipe2NS); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, as, jingle.ActionTransportAccept)
	nextEvent(t, bs, jingle.ActionTransportReplace)
	for _, s := range []*jingle.Session{as, bs} {
		if ns, _ := s.TransportNamespace("c1"); ns != pipe2NS {
			t.Fatalf("%s: c1 transport %s after replace", s.Local(), ns)
		}
	}
	if !at.Closed() {
		t.Fatal("alice's replaced transport was not closed")
	}
	roundTrip(t, as, bs, "c1", "hello over the replacement")

	// session-terminate
	if err := bs.Terminate(ctx, jingle.Reason{Condition: jingle.ReasonSuccess}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, as, jingle.ActionSessionTerminate)
	if ev.Reason == nil || ev.Reason.Condition != jingle.ReasonSuccess {
		t.Fatalf("terminate reason %v", ev.Reason)
	}
	wantState(t, jingle.StateEnded, as, bs)
	for _, s := range []*jingle.Session{as, bs} {
		if _, err := s.NextEvent(ctx); !errors.Is(err, jingle.ErrEnded) {
			t.Fatalf("after end: NextEvent = %v, want ErrEnded", err)
		}
	}
	for _, tr := range append(alice.pipe2.Transports(), bob.pipe.Transports()...) {
		if !tr.Closed() {
			t.Fatal("a transport was left open after the session ended")
		}
	}
	if got := alice.m.Sessions(); len(got) != 0 {
		t.Fatalf("alice still tracks %d sessions", len(got))
	}
}

func TestSessionDeclined(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	declined(t, alice, bob)
}

func declined(t *testing.T, alice, bob *side) {
	ctx := tctx(t)
	as, err := alice.m.Initiate(ctx, bob.xs.LocalAddr(), offer("c1"))
	if err != nil {
		t.Fatal(err)
	}
	bs := incoming(t, bob)
	if err := bs.Terminate(ctx, jingle.Reason{Condition: jingle.ReasonDecline, Text: "no thanks"}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, as, jingle.ActionSessionTerminate)
	if ev.Reason.Condition != jingle.ReasonDecline || ev.Reason.Text != "no thanks" {
		t.Fatalf("reason %+v", ev.Reason)
	}
	wantState(t, jingle.StateEnded, as, bs)
	if r := as.Reason(); r == nil || r.Condition != jingle.ReasonDecline {
		t.Fatalf("alice's session reason %v", r)
	}
	// Anything after the end is an unknown session.
	err = as.Info(ctx)
	if !errors.Is(err, jingle.ErrEnded) {
		t.Fatalf("info after end: %v", err)
	}
}

func TestTransportFallback(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	as, bs := fallBack(t, alice, bob, "ok")
	for _, s := range []*jingle.Session{as, bs} {
		if ns, _ := s.TransportNamespace("f"); ns != jingletest.PipeNS {
			t.Fatalf("%s uses %s after fallback", s.Local(), ns)
		}
	}
}

// acceptedPair starts a session from alice to bob with o, has bob accept
// it, and waits for alice to see the session-accept.
func acceptedPair(t *testing.T, alice, bob *side, o jingle.Offer) (as, bs *jingle.Session) {
	t.Helper()
	ctx := tctx(t)
	as, err := alice.m.Initiate(ctx, bob.xs.LocalAddr(), o)
	if err != nil {
		t.Fatal(err)
	}
	bs = incoming(t, bob)
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, as, jingle.ActionSessionAccept)
	return as, bs
}

// fallBack runs a session whose content "f" is offered over the broken
// method, then the pipe: both sides ask for the stream at once, the broken
// method fails on both, alice (the initiator) replaces it, bob waits for
// that; then msg goes from alice to bob.
func fallBack(t *testing.T, alice, bob *side, msg string) (as, bs *jingle.Session) {
	t.Helper()
	ctx := tctx(t)
	as, bs = acceptedPair(t, alice, bob, offer("f", jingletest.BrokenNS, jingletest.PipeNS))
	done := make(chan error, 1)
	go func() {
		c, err := bs.Conn(ctx, "f")
		if err == nil {
			buf := make([]byte, len(msg))
			_, err = io.ReadFull(c, buf)
			if err == nil && string(buf) != msg {
				err = errors.New("bad data " + string(buf))
			}
		}
		done <- err
	}()
	c, err := as.Conn(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return as, bs
}

func TestTransportFallbackExhausted(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	ctx := tctx(t)
	as, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), offer("f", jingletest.BrokenNS))
	if err != nil {
		t.Fatal(err)
	}
	bs := incoming(t, bob)
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := as.Conn(ctx, "f"); !errors.Is(err, jingle.ErrTransportFailed) {
		t.Fatalf("conn: %v, want ErrTransportFailed", err)
	}
	ev := nextEvent(t, bs, jingle.ActionSessionTerminate)
	if ev.Reason.Condition != jingle.ReasonFailedTransport {
		t.Fatalf("reason %v", ev.Reason)
	}
}

func TestUnsupportedApplicationAndTransport(t *testing.T) {
	n, alice, _ := newPair(t, jingle.Limits{})
	ctx := tctx(t)
	carol := rawClient(t, n, "carol@example.net/c")
	for _, tc := range []struct {
		desc, transport string
		want            jingle.ReasonCondition
	}{
		{"urn:example:app:nobody", jingletest.PipeNS, jingle.ReasonUnsupportedApplications},
		{jingletest.AppNS, "urn:example:transport:nobody", jingle.ReasonUnsupportedTransports},
	} {
		sid := "s-" + string(tc.want)
		term := carol.expect(jingle.ActionSessionTerminate)
		err := carol.send(ctx, xmpptest.Alice, `<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='`+sid+`' initiator='carol@example.net/c'>
			<content creator='initiator' name='x'><description xmlns='`+tc.desc+`'/><transport xmlns='`+tc.transport+`'/></content></jingle>`)
		if err != nil {
			t.Fatalf("%s: initiate refused: %v (XEP-0166 §6.3.2: acknowledge, then terminate)", tc.want, err)
		}
		j := term.wait(t)
		if j.SID != sid || j.Reason == nil || j.Reason.Condition != tc.want {
			t.Fatalf("got %+v, want terminate %s", j, tc.want)
		}
	}
	if got := len(alice.m.Sessions()); got != 0 {
		t.Fatalf("alice keeps %d sessions", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawPeer is a client that speaks Jingle by hand, to send what a
// well-behaved implementation never would.
type rawPeer struct {
	xs   *xmpp.Session
	jid  string
	seen chan *jingle.Jingle
}

func rawClient(t *testing.T, n *xmpptest.Network, addr string) *rawPeer {
	t.Helper()
	p := &rawPeer{jid: addr, seen: make(chan *jingle.Jingle, 64)}
	h := mux.New(stanza.NSClient, mux.IQFunc(stanza.SetIQ, xml.Name{Space: jingle.NS, Local: "jingle"},
		func(iq stanza.IQ, r xmlstreamTokenReadEncoder, start *xml.StartElement) error {
			var j jingle.Jingle
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&j); err != nil {
				return err
			}
			p.seen <- &j
			_, err := xmlstreamCopy(r, iq.Result(nil))
			return err
		}))
	xs, err := n.Client(tctx(t), jid.MustParse(addr), h)
	if err != nil {
		t.Fatal(err)
	}
	p.xs = xs
	return p
}

type expectation struct {
	p      *rawPeer
	action jingle.Action
}

func (p *rawPeer) expect(a jingle.Action) expectation { return expectation{p, a} }

func (e expectation) wait(t *testing.T) *jingle.Jingle {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case j := <-e.p.seen:
			if j.Action == e.action {
				return j
			}
		case <-timeout:
			t.Fatalf("%s never got %s", e.p.jid, e.action)
			return nil
		}
	}
}

// send sends a raw <jingle/> payload in an IQ set and returns the answer's
// error, if any, as *jingle.Error.
func (p *rawPeer) send(ctx context.Context, to, payload string) error {
	return sendRaw(ctx, p.xs, to, payload)
}

func sendRaw(ctx context.Context, xs *xmpp.Session, to, payload string) error {
	resp, err := xs.SendIQElement(ctx, xml.NewDecoder(strings.NewReader(payload)), stanza.IQ{To: jid.MustParse(to), Type: stanza.SetIQ})
	if err != nil {
		return err
	}
	defer resp.Close()
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if _, err := xmlstreamCopy(enc, resp); err != nil {
		return err
	}
	enc.Flush()
	var iq struct {
		Type  string        `xml:"type,attr"`
		Error *jingle.Error `xml:"error"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &iq); err != nil {
		return err
	}
	if iq.Type == "error" {
		if iq.Error == nil {
			return errors.New("error IQ without <error/>")
		}
		return iq.Error
	}
	return nil
}

// iqOnly is a stream that can only send IQs and wait for their answers
// (as linklocal's Node): InfoNoWait must not wait for the answer on it
// either. returned is closed when its first SendIQElement call returns.
type iqOnly struct {
	xs       *xmpp.Session
	calls    *atomic.Int32
	returned chan struct{}
}

func (s iqOnly) LocalAddr() jid.JID { return s.xs.LocalAddr() }

func (s iqOnly) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	if s.calls.Add(1) == 1 {
		defer close(s.returned)
	}
	return s.xs.SendIQElement(ctx, payload, iq)
}

// TestInfoNoWait: a session-info the peer never answers does not hold up
// InfoNoWait, and a session-terminate sent after it follows it on the
// wire, on a stream that can send untracked stanzas and on one that only
// sends IQs.
func TestInfoNoWait(t *testing.T) {
	for _, iqStream := range []bool{false, true} {
		t.Run(fmt.Sprintf("iq-only=%v", iqStream), func(t *testing.T) {
			const iqTimeout = 500 * time.Millisecond
			n, alice, bob := newPair(t, jingle.Limits{IQTimeout: iqTimeout})
			ctx := tctx(t)
			s, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), offer("a"))
			if err != nil {
				t.Fatal(err)
			}
			bs := incoming(t, bob)
			if err := bs.Accept(ctx, nil); err != nil {
				t.Fatal(err)
			}
			nextEvent(t, s, jingle.ActionSessionAccept)
			var wrapped iqOnly
			if iqStream {
				wrapped = iqOnly{xs: alice.xs, calls: new(atomic.Int32), returned: make(chan struct{})}
				alice.m.SetStream(wrapped)
			}
			var mu sync.Mutex
			var order []string
			n.SetFilter(func(from, to jid.JID, st []byte) []byte {
				for _, a := range []string{"session-info", "session-terminate"} {
					if bytes.Contains(st, []byte(`action="`+a+`"`)) {
						mu.Lock()
						order = append(order, a)
						mu.Unlock()
						if a == "session-info" {
							return nil // never answered
						}
					}
				}
				return st
			})
			el, err := jingle.NewElement(struct {
				XMLName xml.Name `xml:"urn:jinglekit:test:info ping"`
			}{})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := s.InfoNoWait(ctx, el); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > iqTimeout/2 {
				t.Fatalf("InfoNoWait took %s", d)
			}
			if err := s.Terminate(ctx, jingle.Reason{Condition: jingle.ReasonSuccess}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got := slices.Clone(order)
			mu.Unlock()
			if !slices.Equal(got, []string{"session-info", "session-terminate"}) {
				t.Fatalf("on the wire: %v", got)
			}
			if iqStream {
				select {
				case <-wrapped.returned:
				case <-time.After(iqTimeout + 5*time.Second):
					t.Fatal("the wait for the unanswered session-info did not end")
				}
			}
		})
	}
}

// TestTransportWaitBounded (issue 13, D2): a responder whose transport
// failed waits for the initiator's transport-replace for
// Limits.TransportWait only; then the session ends with failed-transport.
func TestTransportWaitBounded(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	alice := newSide(t, n, xmpptest.Alice, x, jingle.Limits{})
	bob := newSide(t, n, xmpptest.Bob, x, jingle.Limits{TransportWait: 300 * time.Millisecond})
	ctx := tctx(t)
	// alice offers the broken method and then never replaces it.
	as, bs := acceptedPair(t, alice, bob, offer("f", jingletest.BrokenNS))
	start := time.Now()
	if _, err := bs.Conn(ctx, "f"); !errors.Is(err, jingle.ErrTransportFailed) {
		t.Fatalf("bob's conn: %v, want ErrTransportFailed", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("bob waited %s", d)
	}
	ev := nextEvent(t, as, jingle.ActionSessionTerminate)
	if ev.Reason == nil || ev.Reason.Condition != jingle.ReasonFailedTransport {
		t.Fatalf("alice got %v, want failed-transport", ev.Reason)
	}
	if got := len(bob.m.Sessions()); got != 0 {
		t.Fatalf("bob has %d sessions left", got)
	}
}

// TestSessionsPerAccount (issue 13, D2): the resources of one account
// together cannot take more than Limits.MaxSessionsPerAccount sessions,
// pending ones included, and the refusal names the limit.
func TestSessionsPerAccount(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	x := jingletest.NewExchange()
	bob := newSide(t, n, xmpptest.Bob, x, jingle.Limits{MaxSessionsPerAccount: 2})
	ctx := tctx(t)
	var errs []error
	for i := range 3 {
		a := newSide(t, n, fmt.Sprintf("mallory@example.net/r%d", i), x, jingle.Limits{})
		_, err := a.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), offer("f"))
		errs = append(errs, err)
	}
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("first two sessions: %v", errs)
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "resource-constraint") || !strings.Contains(errs[2].Error(), "limit per account") {
		t.Fatalf("third session: %v, want resource-constraint naming the limit per account", errs[2])
	}
	if got := len(bob.m.Sessions()); got != 2 {
		t.Fatalf("bob has %d sessions, want 2 (pending)", got)
	}
	// Another account is not affected.
	c := newSide(t, n, "carol@example.net/c", x, jingle.Limits{})
	if _, err := c.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), offer("f")); err != nil {
		t.Fatalf("carol: %v", err)
	}
}

// TestPeerGone (issue 13, D4): PeerGone ends the sessions of a full JID, or
// of every resource of a bare JID, with reason gone, and the application
// sees it as a session-terminate.
func TestPeerGone(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	ctx := tctx(t)
	if _, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), offer("f")); err != nil {
		t.Fatal(err)
	}
	bs := incoming(t, bob)
	if n := bob.m.PeerGone(jid.MustParse("alice@example.net/other")); n != 0 {
		t.Fatalf("another resource ended %d sessions", n)
	}
	if n := bob.m.PeerGone(jid.MustParse(xmpptest.Alice).Bare()); n != 1 {
		t.Fatalf("PeerGone ended %d sessions, want 1", n)
	}
	ev := nextEvent(t, bs, jingle.ActionSessionTerminate)
	if ev.Reason == nil || ev.Reason.Condition != jingle.ReasonGone {
		t.Fatalf("reason %v, want gone", ev.Reason)
	}
	if got := len(bob.m.Sessions()); got != 0 {
		t.Fatalf("bob keeps %d sessions", got)
	}
}

// TestIdleSessionCostsNoGoroutine (issue 17): a session whose queue is
// empty, such as a pending offer, has no goroutine of its own on either
// side; one runs only while there is queued work.
func TestIdleSessionCostsNoGoroutine(t *testing.T) {
	_, alice, bob := newPair(t, jingle.Limits{})
	ctx := tctx(t)
	const n = 10
	for i := range n {
		if _, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), offer(fmt.Sprintf("f%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(bob.m.Sessions()); got != n {
		t.Fatalf("bob has %d sessions, want %d", got, n)
	}
	runners := func() int { return goroutines.In("jingle.(*Session).run(") }
	deadline := time.Now().Add(5 * time.Second)
	for runners() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := runners(); got > 0 {
		t.Fatalf("%d session goroutines for %d idle sessions on each side, want 0", got, n)
	}
}
