package jingletest

import (
	"context"
	"errors"
	"fmt"
	"net"

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
