package ice_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/jingletest"
	"github.com/jinglekit/jinglekit/transports/ice"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// testLogger discards logs unless JINGLEKIT_ICE_DEBUG=1, then writes them
// to the test log.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("JINGLEKIT_ICE_DEBUG") != "1" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

// loopbackConfig gathers host candidates on loopback only.
func loopbackConfig(t testing.TB) ice.Config {
	return ice.Config{
		IncludeLoopback: true,
		IPFilter:        func(ip net.IP) bool { return ip.IsLoopback() },
		Logger:          testLogger(t),
	}
}

// side is one party: a Jingle manager with the test application and the
// ICE methods of both dialects.
type side struct {
	xs  *xmpp.Session
	m   *jingle.Manager
	app *jingletest.App
	dc  *ice.Method
	x43 *ice.Method
}

func newSide(t testing.TB, n *xmpptest.Network, addr string, cfg ice.Config) *side {
	t.Helper()
	return wireSide(t, cfg, func(h xmpp.Handler) *xmpp.Session {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		xs, err := n.Client(ctx, jid.MustParse(addr), h)
		if err != nil {
			t.Fatal(err)
		}
		return xs
	}, addr)
}

func wireSide(t testing.TB, cfg ice.Config, connect func(xmpp.Handler) *xmpp.Session, addr string, extra ...mux.Option) *side {
	t.Helper()
	sd := &side{
		m:   &jingle.Manager{Logger: testLogger(t)},
		app: jingletest.NewApp(),
		dc:  &ice.Method{Dialect: ice.DialectWebRTCDataChannel, Config: cfg},
		x43: &ice.Method{Dialect: ice.DialectXEP0343, Config: cfg},
	}
	sd.m.RegisterApplication(sd.app)
	sd.m.RegisterTransport(sd.dc)
	sd.m.RegisterTransport(sd.x43)
	opts := append([]mux.Option{sd.m.Handler()}, extra...)
	sd.xs = connect(mux.New(stanza.NSClient, opts...))
	sd.m.SetStream(sd.xs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sd.m.Close(ctx); err != nil {
			t.Errorf("closing manager of %s: %v", addr, err)
		}
	})
	return sd
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// session starts a session from a to b with one content over the ICE
// method ns, has b accept it, and returns both sessions and both streams.
func session(t testing.TB, a, b *side, peer string, ns string) (as, bs *jingle.Session, ca, cb net.Conn) {
	t.Helper()
	ctx := tctx(t)
	as, err := a.m.Initiate(ctx, jid.MustParse(peer), jingle.Offer{
		Name: "file", Description: jingletest.Desc("file"), Transports: []string{ns},
	})
	if err != nil {
		t.Fatal(err)
	}
	bs = incoming(t, b)
	if err := bs.Accept(ctx, nil); err != nil {
		t.Fatal(err)
	}
	ca, cb = conns(t, as, bs)
	return as, bs, ca, cb
}

// incoming waits for the session-initiate at sd.
func incoming(t testing.TB, sd *side) *jingle.Session {
	t.Helper()
	ctx := tctx(t)
	select {
	case s := <-sd.app.Sessions:
		ev, err := s.NextEvent(ctx)
		if err != nil || ev.Action != jingle.ActionSessionInitiate {
			t.Fatalf("first event %v, %v", ev.Action, err)
		}
		return s
	case <-ctx.Done():
		t.Fatal("no incoming session")
		return nil
	}
}

// conns dials both sides of content "file" concurrently.
func conns(t testing.TB, as, bs *jingle.Session) (ca, cb net.Conn) {
	t.Helper()
	ctx := tctx(t)
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := bs.Conn(ctx, "file"); ch <- res{c, err} }()
	ca, err := as.Conn(ctx, "file")
	r := <-ch
	if err != nil {
		t.Fatalf("initiator's conn: %v", err)
	}
	if r.err != nil {
		t.Fatalf("responder's conn: %v", r.err)
	}
	return ca, r.c
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// transfer writes data on w and checks that r reads exactly data.
func transfer(t testing.TB, w, r net.Conn, data []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		errc <- err
	}()
	got := make([]byte, len(data))
	// A stall bound, not a total one: the 256 MiB runs (JINGLEKIT_BIG)
	// relayed through coturn take 20-70 s on a loaded 2-core machine.
	for n := 0; n < len(got); {
		_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
		k, err := r.Read(got[n:])
		n += k
		if err != nil && n < len(got) {
			t.Fatalf("reading after %d of %d bytes: %v", n, len(got), err)
		}
	}
	_ = r.SetReadDeadline(time.Time{})
	if err := <-errc; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
}

// transportOf returns the ICE link of a session's content.
func transportOf(t testing.TB, s *jingle.Session) *ice.Link {
	t.Helper()
	tr, err := s.Transport("file")
	if err != nil {
		t.Fatal(err)
	}
	l, ok := tr.(*ice.Link)
	if !ok {
		t.Fatalf("transport is %T", tr)
	}
	return l
}
