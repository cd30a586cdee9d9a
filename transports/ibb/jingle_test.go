package ibb_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// side is one party of a Jingle test: a session manager with the test
// application and the IBB method.
type side struct {
	xs  *xmpp.Session
	m   *jingle.Manager
	app *jingletest.App
	ibb *ibb.Method
}

func newSide(t testing.TB, n *xmpptest.Network, addr string, method *ibb.Method) *side {
	return newSideWith(t, n, addr, method, method)
}

// newSideWith registers tm as the transport method and serves method's
// IBB handler.
func newSideWith(t testing.TB, n *xmpptest.Network, addr string, method *ibb.Method, tm jingle.TransportMethod) *side {
	t.Helper()
	sd := &side{m: &jingle.Manager{}, app: jingletest.NewApp(), ibb: method}
	sd.m.RegisterApplication(sd.app)
	sd.m.RegisterTransport(tm)
	sd.xs = jingletest.Join(t, n, addr, mux.New(stanza.NSClient, sd.m.Handler(), method.Handler()), sd.m)
	sd.m.SetStream(sd.xs)
	return sd
}

// session starts a session from alice to bob with one IBB content, has bob
// accept it, and returns both ends of the content's stream.
func session(t testing.TB, alice, bob *side) (as, bs *jingle.Session, ca, cb io.ReadWriteCloser) {
	t.Helper()
	ctx := tctx(t)
	as, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), jingle.Offer{
		Name: "file", Description: jingletest.Desc("file"), Transports: []string{ibb.NSTransport},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case bs = <-bob.app.Sessions:
	case <-ctx.Done():
		t.Fatal("no incoming session")
	}
	if ev, err := bs.NextEvent(ctx); err != nil || ev.Action != jingle.ActionSessionInitiate {
		t.Fatalf("first event %v, %v", ev.Action, err)
	}
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	type res struct {
		c   io.ReadWriteCloser
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := bs.Conn(ctx, "file"); ch <- res{c, err} }()
	a, err := as.Conn(ctx, "file")
	if err != nil {
		t.Fatalf("alice's conn: %v", err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("bob's conn: %v", r.err)
	}
	return as, bs, a, r.c
}

func TestJingleSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"0 B", 0},
		{"1 B", 1},
		{"1 MiB", 1 << 20},
		{"8 MiB random", 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.size > 1<<20 {
				t.Skip("large")
			}
			n := xmpptest.NewNetwork(t)
			alice := newSide(t, n, xmpptest.Alice, &ibb.Method{})
			bob := newSide(t, n, xmpptest.Bob, &ibb.Method{})
			as, bs, ca, cb := session(t, alice, bob)
			transfer(t, ca, cb, randomBytes(t, tc.size))
			if err := cb.Close(); err != nil {
				t.Fatal(err)
			}
			ctx := tctx(t)
			if err := bs.Terminate(ctx, jingle.Reason{Condition: jingle.ReasonSuccess}); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, as, jingle.ActionSessionTerminate)
			if alice.ibb.Streams() != 0 || bob.ibb.Streams() != 0 {
				t.Fatalf("streams left: %d, %d", alice.ibb.Streams(), bob.ibb.Streams())
			}
		})
	}
}

// TestJingleBlockSizeNegotiation: the responder lowers the block size in
// its answer and both sides use the lower one.
func TestJingleBlockSizeNegotiation(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	alice := newSide(t, n, xmpptest.Alice, &ibb.Method{BlockSize: 8192})
	bob := newSide(t, n, xmpptest.Bob, &ibb.Method{MaxBlockSize: 1000})
	as, bs, ca, cb := session(t, alice, bob)
	for _, c := range []io.ReadWriteCloser{ca, cb} {
		if got := c.(*ibb.Conn).BlockSize(); got != 1000 {
			t.Fatalf("block size %d, want 1000", got)
		}
	}
	var offer, answer ibb.Transport
	for _, x := range []struct {
		s *jingle.Session
		v *ibb.Transport
	}{{as, &offer}, {bs, &answer}} {
		tr, err := x.s.Transport("file")
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Local().Decode(x.v); err != nil {
			t.Fatal(err)
		}
	}
	if offer.BlockSize != 8192 || answer.BlockSize != 1000 || offer.SID != answer.SID {
		t.Fatalf("offer %+v, answer %+v", offer, answer)
	}
	transfer(t, ca, cb, randomBytes(t, 10_001))
}

// TestJingleOfferRefused: an offer above 65535 is refused by NewTransport,
// so the session never yields a stream.
func TestJingleOfferRefused(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	// Alice's method is a fake that offers 70000.
	am := &ibb.Method{}
	alice := newSideWith(t, n, xmpptest.Alice, am, &fakeOffer{Method: am, block: 70000})
	bob := newSide(t, n, xmpptest.Bob, &ibb.Method{})
	ctx := tctx(t)
	as, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), jingle.Offer{
		Name: "file", Description: jingletest.Desc("file"), Transports: []string{ibb.NSTransport},
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, as, jingle.ActionSessionTerminate)
	if ev.Reason == nil || ev.Reason.Condition != jingle.ReasonFailedTransport {
		t.Fatalf("terminated with %v; want failed-transport", ev.Reason)
	}
	select {
	case <-bob.app.Sessions:
		t.Fatal("bob's application was handed the session")
	default:
	}
	if bob.ibb.Streams() != 0 {
		t.Fatalf("bob keeps %d streams", bob.ibb.Streams())
	}
}

// fakeOffer is an IBB method whose offers carry any block size.
type fakeOffer struct {
	*ibb.Method
	block int
}

type fakeTransport struct {
	jingle.Transport
	el jingle.Element
}

func (f fakeTransport) Local() jingle.Element { return f.el }

func (f *fakeOffer) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	tr, err := f.Method.NewTransport(ctx, p)
	if err != nil {
		return nil, err
	}
	var v ibb.Transport
	if err := tr.Local().Decode(&v); err != nil {
		return nil, err
	}
	v.BlockSize = f.block
	return fakeTransport{Transport: tr, el: jingle.MustElement(v)}, nil
}

// TestJingleAnswerRaises: an answer that raises the block size, changes
// the sid or is malformed makes the transport fail (SetRemote returns
// ErrOffer, Dial ErrTransportFailed), so the session can fall back.
func TestJingleAnswerRaises(t *testing.T) {
	_, alice, bob := pair(t, &ibb.Method{BlockSize: 1000}, &ibb.Method{})
	for _, bad := range []ibb.Transport{
		{BlockSize: 1001},
		{BlockSize: 70000},
		{BlockSize: 500, SID: "other"},
		{BlockSize: 0},
		{BlockSize: 500, Stanza: "pigeon"},
	} {
		ta := transportFor(t, alice, bob.addr, nil)
		var o ibb.Transport
		if err := ta.Local().Decode(&o); err != nil {
			t.Fatal(err)
		}
		if bad.SID == "" {
			bad.SID = o.SID
		}
		if err := ta.SetRemote(tctx(t), jingle.MustElement(bad)); !errors.Is(err, ibb.ErrOffer) {
			t.Errorf("answer %+v: %v, want ErrOffer", bad, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if _, err := ta.Dial(ctx); !errors.Is(err, jingle.ErrTransportFailed) {
			t.Errorf("Dial after answer %+v: %v, want ErrTransportFailed", bad, err)
		}
		cancel()
	}
	if alice.m.Streams() != 0 {
		t.Fatalf("%d streams left", alice.m.Streams())
	}
}

// waitEvent returns the session's first event with the given action,
// skipping others.
func waitEvent(t testing.TB, s *jingle.Session, want jingle.Action) jingle.Event {
	t.Helper()
	ctx := tctx(t)
	for {
		ev, err := s.NextEvent(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		if ev.Action == want {
			return ev
		}
	}
}

// TestJingleOpenTimeout (issue 13, D2): a peer that never sends its <open/>
// makes Dial fail with ErrTransportFailed after OpenTimeout, whatever the
// caller's context.
func TestJingleOpenTimeout(t *testing.T) {
	n := xmpptest.NewNetwork(t)
	n.SetFilter(func(from, to jid.JID, st []byte) []byte {
		if bytes.Contains(st, []byte("<open")) {
			return nil // alice's <open/> never arrives
		}
		return st
	})
	alice := newSide(t, n, xmpptest.Alice, &ibb.Method{})
	bob := newSide(t, n, xmpptest.Bob, &ibb.Method{OpenTimeout: 300 * time.Millisecond})
	ctx := tctx(t)
	if _, err := alice.m.Initiate(ctx, jid.MustParse(xmpptest.Bob), jingle.Offer{
		Name: "file", Description: jingletest.Desc("file"), Transports: []string{ibb.NSTransport},
	}); err != nil {
		t.Fatal(err)
	}
	var bs *jingle.Session
	select {
	case bs = <-bob.app.Sessions:
	case <-ctx.Done():
		t.Fatal("no incoming session")
	}
	if _, err := bs.NextEvent(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	tr, err := bs.Transport("file")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = tr.(jingle.StreamTransport).Dial(context.Background())
	if !errors.Is(err, jingle.ErrTransportFailed) {
		t.Fatalf("Dial: %v, want ErrTransportFailed", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Dial waited %s", d)
	}
}
