package jingletest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/xmpptest"
)

// Connect returns a Manager with app and methods registered, connected to
// n as addr (a full JID) and served with the Manager's handler and opts (a
// transport's own, such as IBB's). Close the Manager when done.
func Connect(ctx context.Context, n *xmpptest.Network, addr string, app jingle.Application, methods []jingle.TransportMethod, opts ...mux.Option) (*jingle.Manager, error) {
	m := &jingle.Manager{}
	errs := []error{m.RegisterApplication(app)}
	for _, t := range methods {
		errs = append(errs, m.RegisterTransport(t))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	xs, err := n.Client(ctx, jid.MustParse(addr), mux.New(stanza.NSClient, append([]mux.Option{m.Handler()}, opts...)...))
	if err != nil {
		return nil, err
	}
	m.SetStream(xs)
	return m, nil
}

// Closer is what Join closes when the test ends: a jingle.Manager, a
// jmi.Manager.
type Closer interface {
	Close(ctx context.Context) error
}

// joinWithin bounds Join's connect and the Close of its Closer.
const joinWithin = 10 * time.Second

// Join connects addr (a full JID) to n, served by h, and returns its
// session; it fails the test when addr cannot connect within 10 s. When
// the test ends, m (when not nil) is closed, within 10 s, before the
// Network is (xmpptest.NewNetwork's cleanup runs after Join's), and an
// error closing it fails the test. Give the session to m (SetStream) as
// the test needs: directly, or through an xmppclient.IQTracker.
func Join(t testing.TB, n *xmpptest.Network, addr string, h xmpp.Handler, m Closer) *xmpp.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), joinWithin)
	defer cancel()
	j, err := jid.Parse(addr)
	if err != nil {
		t.Fatalf("jingletest: joining %q: %v", addr, err)
	}
	xs, err := n.Client(ctx, j, h)
	if err != nil {
		t.Fatalf("jingletest: connecting %s: %v", addr, err)
	}
	if m != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), joinWithin)
			defer cancel()
			if err := m.Close(ctx); err != nil {
				t.Errorf("jingletest: closing the %T of %s: %v", m, addr, err)
			}
		})
	}
	return xs
}

// Streams starts a session from initiator to peer, whose App accepts it,
// with one content named name over the transport method ns, and returns
// the content's stream on each side. The sessions end with the Managers.
func Streams(ctx context.Context, initiator *jingle.Manager, peer jid.JID, app *App, name, ns string) (a, b net.Conn, err error) {
	as, err := initiator.Initiate(ctx, peer, jingle.Offer{Name: name, Description: Desc(name), Transports: []string{ns}})
	if err != nil {
		return nil, nil, err
	}
	var bs *jingle.Session
	select {
	case bs = <-app.Sessions:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if ev, err := bs.NextEvent(ctx); err != nil || ev.Action != jingle.ActionSessionInitiate {
		return nil, nil, fmt.Errorf("jingletest: first event %v, %v", ev.Action, err)
	}
	if err := bs.Accept(ctx, nil); err != nil {
		return nil, nil, err
	}
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := as.Conn(ctx, name)
		ch <- res{c, err}
	}()
	b, err = bs.Conn(ctx, name)
	r := <-ch
	if err = errors.Join(err, r.err); err != nil {
		return nil, nil, err
	}
	return r.c, b, nil
}
