package xmpptest_test

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/xmpptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	alice = jid.MustParse(xmpptest.Alice)
	bob   = jid.MustParse(xmpptest.Bob)
	carol = jid.MustParse("carol@example.net/c")
)

// got is a message or presence as seen by a recipient's handler.
type got struct {
	Name, From, To, Type, Body string
}

// peer answers pings (through a mux) and records every message and presence
// on rec, which may be nil.
func peer(rec chan<- got) xmpp.Handler {
	m := mux.New(stanza.NSClient, ping.Handle())
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local == "iq" {
			return m.HandleXMPP(t, start)
		}
		var v struct {
			From string `xml:"from,attr"`
			To   string `xml:"to,attr"`
			Type string `xml:"type,attr"`
			Body string `xml:"body"`
		}
		d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
		if err := d.Decode(&v); err != nil {
			return err
		}
		if rec != nil {
			rec <- got{Name: start.Name.Local, From: v.From, To: v.To, Type: v.Type, Body: v.Body}
		}
		return nil
	})
}

func recv(t *testing.T, ch <-chan got) got {
	t.Helper()
	select {
	case g := <-ch:
		return g
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a stanza")
		return got{}
	}
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func pingIQ(to jid.JID) xml.TokenReader {
	return ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: to}}.TokenReader()
}

// sendIQ sends an IQ and returns the response header; err is the stanza error
// of an error response.
func sendIQ(ctx context.Context, s *xmpp.Session, r xml.TokenReader) (stanza.IQ, error) {
	resp, err := s.SendIQ(ctx, r)
	if err != nil {
		return stanza.IQ{}, err
	}
	defer resp.Close()
	tok, err := resp.Token()
	if err != nil {
		return stanza.IQ{}, err
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return stanza.IQ{}, errors.New("response does not start with an element")
	}
	return stanza.UnmarshalIQError(resp, start)
}

func message(to, from jid.JID, body string) xml.TokenReader {
	return stanza.Message{To: to, From: from, Type: stanza.ChatMessage}.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}}))
}

func TestPing(t *testing.T) {
	a, b := xmpptest.NewPair(t, nil, peer(nil))
	if !a.LocalAddr().Equal(alice) || !b.LocalAddr().Equal(bob) {
		t.Fatalf("LocalAddr = %s, %s; want %s, %s", a.LocalAddr(), b.LocalAddr(), alice, bob)
	}
	iq, err := sendIQ(timeout(t, 5*time.Second), a, pingIQ(bob))
	if err != nil {
		t.Fatal(err)
	}
	if iq.Type != stanza.ResultIQ || !iq.From.Equal(bob) {
		t.Fatalf("got %s from %s, want result from %s", iq.Type, iq.From, bob)
	}
	// Bob has no handler for pings to alice: mellium itself answers
	// service-unavailable, with from stamped by the router.
	iq, err = sendIQ(timeout(t, 5*time.Second), b, pingIQ(alice))
	if !errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) || !iq.From.Equal(alice) {
		t.Fatalf("got %v from %s, want service-unavailable from %s", err, iq.From, alice)
	}
}

func TestMessageFromIsStamped(t *testing.T) {
	rec := make(chan got, 8)
	a, _ := xmpptest.NewPair(t, nil, peer(rec))
	ctx := timeout(t, 5*time.Second)
	if err := a.Send(ctx, message(bob, jid.JID{}, "hello")); err != nil {
		t.Fatal(err)
	}
	if g := recv(t, rec); g.From != xmpptest.Alice || g.Body != "hello" || g.To != xmpptest.Bob {
		t.Fatalf("got %+v", g)
	}
	// Alice claims to be carol; the router overwrites it.
	if err := a.Send(ctx, message(bob, carol, "forged")); err != nil {
		t.Fatal(err)
	}
	if g := recv(t, rec); g.From != xmpptest.Alice || g.Body != "forged" {
		t.Fatalf("forged from not replaced: got %+v", g)
	}
}

func TestServerErrors(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	a, err := n.Client(timeout(t, 5*time.Second), alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{
		"dave@example.net/x",  // unknown account
		"alice@example.net/z", // own account, resource not connected
		"bob@example.net",     // bare JID
		"carol@other.example/c",
		"example.net", // server itself: no ping support
	} {
		t.Run(to, func(t *testing.T) {
			iq, err := sendIQ(timeout(t, 5*time.Second), a, pingIQ(jid.MustParse(to)))
			var se stanza.Error
			if !errors.As(err, &se) || se.Condition != stanza.ServiceUnavailable || se.Type != stanza.Cancel {
				t.Fatalf("got %v, want cancel/service-unavailable", err)
			}
			if iq.From.String() != to {
				t.Errorf("error from %s, want %s", iq.From, to)
			}
		})
	}
	t.Run("disco#info", func(t *testing.T) {
		var info struct {
			Identity []struct {
				Category string `xml:"category,attr"`
				Type     string `xml:"type,attr"`
			} `xml:"identity"`
		}
		err := a.UnmarshalIQElement(timeout(t, 5*time.Second),
			xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"}}),
			stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse(xmpptest.Domain)}, &info)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Identity) != 1 || info.Identity[0].Category != "server" || info.Identity[0].Type != "im" {
			t.Fatalf("got identities %+v", info.Identity)
		}
	})
}

func TestThirdClientAndBroadcast(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	ctx := timeout(t, 10*time.Second)
	recs := map[string]chan got{}
	sess := map[string]*xmpp.Session{}
	for _, j := range []string{xmpptest.Alice, xmpptest.Bob, "bob@example.net/b2", "carol@example.net/c"} {
		recs[j] = make(chan got, 8)
		s, err := n.Client(ctx, jid.MustParse(j), peer(recs[j]))
		if err != nil {
			t.Fatal(err)
		}
		sess[j] = s
	}
	a := sess[xmpptest.Alice]
	if iq, err := sendIQ(ctx, a, pingIQ(carol)); err != nil || iq.Type != stanza.ResultIQ {
		t.Fatalf("ping carol: %v %v", iq.Type, err)
	}

	// Presence without to goes to everybody else.
	if err := a.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	// A message to bob's bare JID goes to both of bob's resources only.
	if err := a.Send(ctx, message(bob.Bare(), jid.JID{}, "to bare")); err != nil {
		t.Fatal(err)
	}
	// Markers: the router preserves each sender's order per recipient, so
	// once a marker arrives nothing sent before it is still in flight.
	for _, j := range []jid.JID{alice, carol} {
		if err := a.Send(ctx, message(j, jid.JID{}, "marker")); err != nil {
			t.Fatal(err)
		}
	}
	for j, want := range map[string][]got{
		xmpptest.Bob:          {{Name: "presence"}, {Name: "message", Body: "to bare"}},
		"bob@example.net/b2":  {{Name: "presence"}, {Name: "message", Body: "to bare"}},
		"carol@example.net/c": {{Name: "presence"}, {Name: "message", Body: "marker"}},
		xmpptest.Alice:        {{Name: "message", Body: "marker"}},
	} {
		for _, w := range want {
			g := recv(t, recs[j])
			if g.Name != w.Name || g.Body != w.Body || g.From != xmpptest.Alice {
				t.Errorf("%s got %+v, want %s %q from alice", j, g, w.Name, w.Body)
			}
		}
	}
}

func TestDisconnect(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	ctx := timeout(t, 10*time.Second)
	a, err := n.Client(ctx, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Client(ctx, bob, peer(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client(ctx, bob, nil); err == nil {
		t.Fatal("connecting bob twice succeeded")
	}
	if _, err := n.Client(ctx, bob.Bare(), nil); err == nil {
		t.Fatal("connecting a bare JID succeeded")
	}
	if _, err := sendIQ(ctx, a, pingIQ(bob)); err != nil {
		t.Fatal(err)
	}
	if err := n.Disconnect(bob); err != nil {
		t.Fatal(err)
	}
	if st := b.State(); st&xmpp.InputStreamClosed == 0 || st&xmpp.OutputStreamClosed == 0 {
		t.Errorf("bob's session state after Disconnect: %v", st)
	}
	if _, err := sendIQ(ctx, a, pingIQ(bob)); !errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) {
		t.Fatalf("ping after disconnect: %v, want service-unavailable", err)
	}
	if err := n.Disconnect(bob); !errors.Is(err, xmpptest.ErrNotConnected) {
		t.Fatalf("second Disconnect: %v", err)
	}
	// Bob can come back.
	b, err = n.Client(ctx, bob, peer(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sendIQ(ctx, a, pingIQ(bob)); err != nil {
		t.Fatalf("ping after reconnect: %v", err)
	}
	// A client closing its own stream goes offline too (eventually: the
	// router notices asynchronously).
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := sendIQ(timeout(t, 100*time.Millisecond), b, pingIQ(alice))
		if errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("alice still reachable after closing her stream: %v", err)
		}
	}
}

func TestFilter(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	ctx := timeout(t, 10*time.Second)
	rec := make(chan got, 8)
	a, err := n.Client(ctx, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client(ctx, bob, peer(rec)); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	record := func(from, to jid.JID, b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, from.String()+">"+to.String()+" "+string(b))
		return b
	}
	n.SetFilter(record)

	t.Run("re-encoding", func(t *testing.T) {
		mu.Lock()
		seen = nil
		mu.Unlock()
		attr := func(space, local, v string) xml.Attr {
			return xml.Attr{Name: xml.Name{Space: space, Local: local}, Value: v}
		}
		thing := xml.StartElement{Name: xml.Name{Space: "urn:example:thing", Local: "thing"}, Attr: []xml.Attr{
			attr("urn:example:x", "attr", "v"), attr("http://www.w3.org/XML/1998/namespace", "lang", "en"),
		}}
		msg := xmlstream.Wrap(xmlstream.MultiReader(
			xmlstream.Wrap(xmlstream.Token(xml.CharData("hi & bye")), xml.StartElement{Name: xml.Name{Local: "body"}}),
			xmlstream.Wrap(xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:example:thing", Local: "child"}}), thing),
		), xml.StartElement{Name: xml.Name{Local: "message"}, Attr: []xml.Attr{
			attr("", "type", "chat"), attr("", "id", "m1"), attr("", "to", xmpptest.Bob), attr("", "from", "carol@example.net/c"),
		}})
		if err := a.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if g := recv(t, rec); g.Body != "hi & bye" || g.From != xmpptest.Alice {
			t.Fatalf("bob got %+v", g)
		}
		const want = `alice@example.net/a>bob@example.net/b ` +
			`<message xmlns="jabber:client" type="chat" id="m1" to="bob@example.net/b" from="alice@example.net/a">` +
			`<body>hi &amp; bye</body>` +
			`<thing xmlns="urn:example:thing" xmlns:_="urn:example:x" _:attr="v" xml:lang="en"><child></child></thing>` +
			`</message>`
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 1 || seen[0] != want {
			t.Fatalf("filter saw\n%q\nwant\n%q", seen, want)
		}
	})

	t.Run("alter", func(t *testing.T) {
		n.SetFilter(func(_, _ jid.JID, b []byte) []byte {
			return []byte(strings.Replace(string(b), "<body>secret</body>", "<body>altered</body>", 1))
		})
		defer n.SetFilter(record)
		if err := a.Send(ctx, message(bob, jid.JID{}, "secret")); err != nil {
			t.Fatal(err)
		}
		if g := recv(t, rec); g.Body != "altered" {
			t.Fatalf("bob got %+v", g)
		}
	})

	t.Run("drop", func(t *testing.T) {
		n.SetFilter(func(_, _ jid.JID, b []byte) []byte {
			if strings.Contains(string(b), "urn:xmpp:ping") || strings.Contains(string(b), "<body>dropped</body>") {
				return nil
			}
			return b
		})
		defer n.SetFilter(record)
		_, err := sendIQ(timeout(t, 200*time.Millisecond), a, pingIQ(bob))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dropped ping: %v, want deadline exceeded", err)
		}
		for _, body := range []string{"dropped", "kept"} {
			if err := a.Send(ctx, message(bob, jid.JID{}, body)); err != nil {
				t.Fatal(err)
			}
		}
		if g := recv(t, rec); g.Body != "kept" {
			t.Fatalf("bob got %+v, want only the kept message", g)
		}
	})
}

func TestInject(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	ctx := timeout(t, 5*time.Second)
	rec := make(chan got, 8)
	if _, err := n.Client(ctx, bob, peer(rec)); err != nil {
		t.Fatal(err)
	}
	if err := n.Inject(ctx, bob, `<message from='carol@example.net/c' type='chat'><body>spoof</body></message>`); err != nil {
		t.Fatal(err)
	}
	if g := recv(t, rec); g.From != "carol@example.net/c" || g.Body != "spoof" {
		t.Fatalf("got %+v", g)
	}
	if err := n.Inject(ctx, alice, `<message/>`); !errors.Is(err, xmpptest.ErrNotConnected) {
		t.Fatalf("inject to unknown JID: %v", err)
	}
	for _, bad := range []string{``, `<a/><b/>`, `<a>`, `text<a/>`} {
		if err := n.Inject(ctx, bob, bad); err == nil {
			t.Errorf("Inject(%q) succeeded", bad)
		}
	}
}

// TestHandlerMustNotUseSession proves the rule in the package doc: while a
// handler runs, Serve holds the session's streams.
func TestHandlerMustNotUseSession(t *testing.T) {
	t.Run("SendIQ inside handler never sees its response", func(t *testing.T) {
		var bobS atomic.Pointer[xmpp.Session]
		results := make(chan error, 2)
		hb := xmpp.HandlerFunc(func(_ xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			req := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				_, err := sendIQ(ctx, bobS.Load(), pingIQ(alice))
				return err
			}
			results <- req()                 // inline: deadlocks until the deadline
			go func() { results <- req() }() // own goroutine: works
			return nil
		})
		a, b := xmpptest.NewPair(t, peer(nil), hb)
		bobS.Store(b)
		if err := a.Send(timeout(t, 5*time.Second), message(bob, jid.JID{}, "go")); err != nil {
			t.Fatal(err)
		}
		if err := <-results; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("SendIQ inside handler: %v, want deadline exceeded", err)
		}
		if err := <-results; err != nil {
			t.Errorf("SendIQ from handler's goroutine: %v", err)
		}
	})

	t.Run("Send blocks after the handler replied", func(t *testing.T) {
		var bobS atomic.Pointer[xmpp.Session]
		sent := make(chan error, 1)
		blocked := make(chan bool, 1)
		hb := mux.New(stanza.NSClient, mux.IQFunc(stanza.GetIQ, xml.Name{Space: ping.NS, Local: "ping"},
			func(iq stanza.IQ, t xmlstream.TokenReadEncoder, _ *xml.StartElement) error {
				if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
					return err
				}
				go func() { sent <- bobS.Load().Send(context.Background(), message(alice, jid.JID{}, "late")) }()
				select {
				case err := <-sent:
					sent <- err
					blocked <- false
				case <-time.After(100 * time.Millisecond):
					blocked <- true
				}
				return nil
			}))
		rec := make(chan got, 1)
		a, b := xmpptest.NewPair(t, peer(rec), hb)
		bobS.Store(b)
		if _, err := sendIQ(timeout(t, 5*time.Second), a, pingIQ(bob)); err != nil {
			t.Fatal(err)
		}
		if !<-blocked {
			t.Error("Send completed while the handler held the output stream")
		}
		if err := <-sent; err != nil {
			t.Fatalf("Send after the handler returned: %v", err)
		}
		if g := recv(t, rec); g.Body != "late" {
			t.Fatalf("alice got %+v", g)
		}
	})
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	n := xmpptest.New(xmpptest.Domain)
	ctx := timeout(t, 10*time.Second)
	rec := make(chan got, 8)
	var sess []*xmpp.Session
	for _, j := range []jid.JID{alice, bob, carol} {
		s, err := n.Client(ctx, j, peer(rec))
		if err != nil {
			t.Fatal(err)
		}
		sess = append(sess, s)
	}
	if _, err := sendIQ(ctx, sess[0], pingIQ(bob)); err != nil {
		t.Fatal(err)
	}
	if err := sess[1].Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	if err := n.Disconnect(carol); err != nil {
		t.Fatal(err)
	}
	if err := sess[0].Close(); err != nil { // leaves on its own
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client(ctx, alice, nil); !errors.Is(err, xmpptest.ErrClosed) {
		t.Fatalf("Client after Close: %v", err)
	}
	if err := sess[1].Send(ctx, stanza.Presence{}.Wrap(nil)); err == nil {
		t.Error("Send on a session of a closed network succeeded")
	}
	goleak.VerifyNone(t)
}

// TestMelliumQuirks pins down mellium behaviour that spoofing defences must
// take into account.
func TestMelliumQuirks(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	ctx := timeout(t, 5*time.Second)
	rec := make(chan got, 8)
	a, err := n.Client(ctx, alice, peer(rec))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client(ctx, bob, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("IQ responses are matched by id only", func(t *testing.T) {
		n.SetFilter(func(_, _ jid.JID, _ []byte) []byte { return nil }) // bob never answers
		defer n.SetFilter(nil)
		done := make(chan error, 1)
		go func() {
			iq, err := sendIQ(ctx, a, ping.IQ{IQ: stanza.IQ{ID: "q1", Type: stanza.GetIQ, To: bob}}.TokenReader())
			if err == nil && !iq.From.Equal(carol) {
				err = errors.New("response not from carol: " + iq.From.String())
			}
			done <- err
		}()
		// Keep injecting until the request is pending (earlier copies are
		// handled as unsolicited results and answered by nobody).
		for {
			if err := n.Inject(ctx, alice, `<iq type='result' id='q1' from='carol@example.net/c'/>`); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})

	t.Run("from equal to own bare JID is emptied", func(t *testing.T) {
		if err := n.Inject(ctx, alice, `<message from='alice@example.net' type='chat'><body>x</body></message>`); err != nil {
			t.Fatal(err)
		}
		if g := recv(t, rec); g.From != "" {
			t.Fatalf("handler saw from=%q, want empty", g.From)
		}
	})
}
