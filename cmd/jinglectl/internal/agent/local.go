package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/filetransfer"
	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/linklocal"
	"github.com/jinglekit/jinglekit/transports/ibb"
	"github.com/jinglekit/jinglekit/transports/socks5"
	"github.com/jinglekit/jinglekit/xmppclient"
)

// link is what a Conn is connected through: an xmppclient.Client logged in
// to a server, or a link-local node (serverless mode).
type link interface {
	LocalAddr() jid.JID
	Err() error
	Close() error
}

// nodeLink is a link-local node as a Conn's link. A node has no stream of
// its own that could end: Err is always nil.
type nodeLink struct{ n *linklocal.Node }

func (l nodeLink) LocalAddr() jid.JID { return l.n.LocalAddr() }
func (nodeLink) Err() error           { return nil }
func (l nodeLink) Close() error       { return l.n.Close() }

// LocalPeer is a link-local peer given by address, to reach without
// multicast DNS.
type LocalPeer struct {
	// Name is the peer's link-local name; empty means "whoever answers at
	// Addr" (the node connects at once and learns the name).
	Name string
	// Addr is "host:port".
	Addr string
}

// LocalOptions configure ConnectLocal: serverless mode, XEP-0174 link-local
// messaging. There is no account and no authentication: a peer is whoever
// claims a name from an address it is advertised (or was given) at.
type LocalOptions struct {
	// Name is this entity's link-local name, user@machine
	// (linklocal.ParseName).
	Name string
	// Listen is the TCP address streams are accepted on (default ":0").
	Listen string
	// NoMulticast runs without mDNS: peers are reached by Peers only, and
	// streams from names nobody advertises are accepted at the address
	// they come from.
	NoMulticast bool
	// Interfaces restricts mDNS to these network interfaces.
	Interfaces []string
	// Peers are reached without mDNS (see LocalPeer); ConnectLocal adds
	// them and fails with an error wrapping xmppclient.ErrConnect when one
	// without a name does not answer as an XMPP link-local peer.
	Peers []LocalPeer
	// AllowLoopback offers and uses loopback SOCKS5 candidates (peers on
	// this host).
	AllowLoopback bool
	// Receive, when set, accepts files from Receive.AcceptFrom (an empty
	// list allows nobody: there is no roster). Otherwise every offer is
	// declined.
	Receive *ReceiveOptions
	// Ask, when set, is asked about each file offered by a sender not in
	// Receive.AcceptFrom (true accepts it). It is called from the
	// session's goroutine, one offer at a time.
	Ask func(filetransfer.Offer) bool
	// OnEvent receives the events of incoming sessions.
	OnEvent func(Event)
	// Logger receives the logs; default slog.Default().
	Logger *slog.Logger
}

// ConnectLocal starts a link-local node and wires Jingle file transfer on
// it, as Connect does on a logged-in account: the returned Conn sends with
// Send (to a peer found with ResolveLocal) and receives per
// LocalOptions.Receive. Close stops the node. ctx bounds the start.
func ConnectLocal(ctx context.Context, o LocalOptions) (*Conn, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if _, err := linklocal.ParseName(o.Name); err != nil {
		return nil, &ConfigError{Err: err}
	}
	h := newHub()
	c := &Conn{cfg: Config{AllowLoopback: o.AllowLoopback}.WithDefaults(), log: log, hub: h, roster: newRoster()}
	c.m = &jingle.Manager{Logger: log, Observer: h}
	ft := &filetransfer.Handler{Logger: log, Progress: h.progress}
	rcv, allow := newReceiver(h, ft, o.Receive, o.OnEvent)
	ask := o.Ask
	if o.Receive == nil {
		ask = nil
	}
	// A session is "allowed" when its sender is listed or may be asked;
	// each offer is then decided by localPolicy.
	rcv.allowed = func(from jid.JID) bool { return o.Receive != nil && (listed(allow, from) || ask != nil) }
	var askMu sync.Mutex
	ft.Policy = func(off filetransfer.Offer) filetransfer.Decision {
		switch {
		case o.Receive == nil:
			return rcv.decide(off, false, "not receiving")
		case listed(allow, off.From):
			return rcv.decide(off, true, "")
		case ask != nil:
			askMu.Lock()
			ok := ask(off)
			askMu.Unlock()
			return rcv.decide(off, ok, "declined by the user")
		}
		return rcv.decide(off, false, "sender not allowed")
	}
	ft.Done = rcv.done
	c.s5b = socks5.NewMethod(socks5.Settings{AllowLoopback: o.AllowLoopback, NoProxyDiscovery: true, Logger: log})
	c.ibb = &ibb.Method{Logger: log, OpenTimeout: c.cfg.ConnectTimeout}
	c.ice = iceMethods(localICEConfig(o.AllowLoopback, log))
	if err := c.register(rcv); err != nil {
		return nil, err
	}

	features := c.m.Features()
	caps := xmppclient.Caps{
		Node:       CapsNode,
		Identities: []xmppclient.Identity{{Category: "client", Type: "pc", Name: "jinglectl"}},
		Features:   features,
	}
	node := &linklocal.Node{
		Name:               o.Name,
		Listen:             o.Listen,
		Interfaces:         o.Interfaces,
		NoMulticast:        o.NoMulticast,
		AcceptUnadvertised: o.NoMulticast,
		Caps:               caps,
		Handler:            mux.New(stanza.NSClient, c.m.Handler(), c.ibb.Handler(), xmppclient.HandleDisco(caps)),
		Logger:             log,
	}
	c.m.SetStream(node)
	if err := node.Start(ctx); err != nil {
		_ = c.m.Close(context.Background())
		return nil, fmt.Errorf("%w: link-local node: %w", xmppclient.ErrConnect, err)
	}
	c.node = node
	c.link = nodeLink{node}
	c.life, c.cancel = context.WithCancel(context.Background())
	for _, p := range o.Peers {
		if _, err := node.AddPeer(ctx, p.Name, p.Addr); err != nil {
			_ = c.Close(context.Background())
			return nil, fmt.Errorf("%w: peer %s: %w", xmppclient.ErrConnect, p.Addr, err)
		}
	}
	return c, nil
}

// Node returns the link-local node of a Conn made by ConnectLocal (nil
// otherwise).
func (c *Conn) Node() *linklocal.Node { return c.node }

// ResolveLocal finds the link-local peer called name (waiting for its mDNS
// advertisement up to ctx's deadline, or the node's resolve timeout) and
// checks that it supports Jingle file transfer. Errors wrap
// ErrRecipientOffline, ErrUnsupported, or xmppclient.ErrConnect when its
// stream cannot be opened.
func (c *Conn) ResolveLocal(ctx context.Context, name jid.JID) (jid.JID, xmppclient.Info, error) {
	if c.node == nil {
		return jid.JID{}, xmppclient.Info{}, errors.New("not in serverless mode")
	}
	p, err := c.node.Resolve(ctx, name.String())
	if err != nil {
		if errors.Is(err, linklocal.ErrUnknownPeer) {
			return jid.JID{}, xmppclient.Info{}, fmt.Errorf("%w: %s is not around (no mDNS advertisement; give --peer HOST:PORT)", ErrRecipientOffline, name)
		}
		return jid.JID{}, xmppclient.Info{}, err
	}
	info, err := c.node.Disco(ctx, p.Name)
	if err != nil {
		var se stanza.Error
		if errors.As(err, &se) {
			return jid.JID{}, info, fmt.Errorf("%w: %s does not answer (%s)", ErrRecipientOffline, p.Name, se.Condition)
		}
		if ctx.Err() != nil {
			return jid.JID{}, info, fmt.Errorf("%w: %s: %w", ErrRecipientOffline, p.Name, err)
		}
		return jid.JID{}, info, fmt.Errorf("%w: %s: %w", xmppclient.ErrConnect, p.Name, err)
	}
	if !SupportsFileTransfer(info) {
		return jid.JID{}, info, fmt.Errorf("%w: %s", ErrUnsupported, p.Name)
	}
	return p.Name, info, nil
}

// decide records the decision on an offer with its events, like policy.
func (r *receiver) decide(o filetransfer.Offer, accept bool, why string) filetransfer.Decision {
	dec := filetransfer.Decision{Accept: accept}
	if dec.Accept && sameAsExisting(r.dir, o) {
		dec.Overwrite = true
	}
	w := r.hub.get(o.SID)
	if w == nil {
		return dec
	}
	f := &fileRef{id: r.newID(o.SID, o.Content), name: o.Name, size: o.Size, content: o.Content}
	r.announce(w, f, dec.Accept, why)
	return dec
}
