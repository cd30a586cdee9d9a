package linklocal

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/jinglekit/jinglekit/jingle"
	"github.com/jinglekit/jinglekit/xmppclient"
	"github.com/jinglekit/jinglekit/xmppclient/deadline"
)

// DefaultPort is the port link-local messaging historically used (iChat,
// libpurple). Any port works: it is advertised in the SRV record.
const DefaultPort = 5298

// Node errors.
var (
	ErrClosed         = errors.New("linklocal: node closed")
	ErrNotStarted     = errors.New("linklocal: node not started")
	ErrUnknownPeer    = errors.New("linklocal: unknown peer")
	ErrStreamClosed   = errors.New("linklocal: stream to the peer closed")
	ErrTooManyStreams = errors.New("linklocal: too many streams")
)

// Limits bound what a Node does and accepts. Zero values mean the defaults.
type Limits struct {
	// MaxStreams is the number of streams open or being negotiated, in
	// both directions together (default 64). Connections beyond it are
	// closed at once.
	MaxStreams int
	// MaxPeers is the number of peers remembered (default 256); further
	// advertisements are ignored.
	MaxPeers int
	// MaxHeaderBytes bounds what a peer may send before its stream is open:
	// the stream header and stream features (default 64 KiB).
	MaxHeaderBytes int
	// NegotiateTimeout bounds connecting and opening a stream (default 10s).
	NegotiateTimeout time.Duration
	// ResolveTimeout bounds the wait for an advertisement: to dial a peer
	// not seen yet, or to check who may claim a name (default 3s).
	ResolveTimeout time.Duration
	// CloseTimeout bounds the wait for a peer to close its stream when this
	// node closes (default 3s).
	CloseTimeout time.Duration
	// QueryInterval is the interval of mDNS browse queries (default 5s).
	QueryInterval time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxStreams, 64)
	def(&l.MaxPeers, 256)
	def(&l.MaxHeaderBytes, 64<<10)
	defd(&l.NegotiateTimeout, 10*time.Second)
	defd(&l.ResolveTimeout, 3*time.Second)
	defd(&l.CloseTimeout, 3*time.Second)
	defd(&l.QueryInterval, defaultQueryIv)
	return l
}

// Node is one link-local XMPP entity (XEP-0174): it advertises itself over
// DNS-SD/mDNS, discovers the others, accepts their streams, opens streams
// to them, and routes stanzas by peer. It implements jingle.IQSender, so
// one jingle.Manager serves every peer (Manager.SetStream(node)).
//
// Set the exported fields, then call Start; do not change them afterwards.
type Node struct {
	// Name is this entity's link-local name, "user@machine" (see
	// ParseName). Required.
	Name string
	// Presence advertised in the TXT record: Status ("avail", "away",
	// "dnd"; empty means avail) and Msg (free text).
	Status, Msg string
	// Personal information for the TXT record, each left out when empty
	// (XEP-0174 §7: publishing it must be the user's choice).
	Nick, First, Last, Email, JID string
	// Listen is the TCP address streams are accepted on; default ":0"
	// (any free port, advertised in SRV). Listen on every address the
	// advertised interfaces have (":port"), or peers cannot connect.
	Listen string
	// Interfaces are the network interfaces mDNS runs on; empty means every
	// interface that is up, has the MULTICAST flag and an IPv4 address
	// (loopback excluded).
	Interfaces []string
	// NoMulticast disables mDNS: nothing is advertised or browsed, and
	// peers are reached with AddPeer only.
	NoMulticast bool
	// AcceptUnadvertised accepts streams from names that nobody advertises
	// (no mDNS record, not added), recording them at the connecting
	// address. A name known at another address is refused whatever this
	// says (XEP-0174 §7). Off by default.
	AcceptUnadvertised bool
	// Handler receives the stanzas of every stream, after their 'from' is
	// checked (and set when missing) and their 'to' is this node. Use one
	// mux for all: the jingle Manager's handler, the transports' handlers
	// and xmppclient.HandleDisco(Caps). nil answers disco#info only.
	Handler xmpp.Handler
	// Caps are this entity's capabilities: advertised in the TXT record
	// (node, hash, ver), sent as disco#info in stream features, and
	// answered by the default Handler.
	Caps xmppclient.Caps
	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger
	Limits Limits

	name    jid.JID
	machine string
	lim     Limits
	log     *slog.Logger
	handler xmpp.Handler
	ln      net.Listener
	sd      *dnssd // set by Start before any use; read without the lock
	// mdnsLoopback: mDNS runs on a loopback interface.
	mdnsLoopback bool
	disco        *xmppclient.Disco
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup

	mu       sync.Mutex
	started  bool
	closed   bool
	txt      TXT
	peers    map[string]*peerEntry
	streams  map[string][]*xstream
	nstreams int
	dials    map[string]*dialCall
	changed  chan struct{}
	subs     map[*subscriber]struct{}
}

// xstream is one open stream with a peer, in either direction.
type xstream struct {
	peer     jid.JID
	sess     *xmpp.Session
	dc       *deadline.Conn
	remote   net.Addr
	outgoing bool
	ctx      context.Context // done when the stream has ended
	cancel   context.CancelFunc
}

type dialCall struct {
	done chan struct{}
	err  error
}

type subscriber struct {
	ch   chan PeerEvent
	stop func() bool
}

var _ jingle.IQSender = (*Node)(nil)

// Start validates the configuration, listens, starts advertising and
// browsing (unless NoMulticast) and accepts streams. ctx bounds the start
// only. Without a usable multicast interface it fails with an error
// wrapping ErrNoMulticast.
func (n *Node) Start(ctx context.Context) (err error) {
	name, err := ParseName(n.Name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return errors.New("linklocal: node already started")
	}
	n.started = true
	n.name = name
	_, n.machine, _ = strings.Cut(n.Name, "@")
	n.lim = n.Limits.withDefaults()
	n.log = n.Logger
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("node", n.name.String())
	n.handler = n.Handler
	if n.handler == nil {
		n.handler = mux.New(stanza.NSClient, xmppclient.HandleDisco(n.Caps))
	}
	n.disco = xmppclient.NewDisco(xmppclient.DiscoConfig{Logger: n.log, MaxPeers: n.lim.MaxPeers})
	n.peers = map[string]*peerEntry{}
	n.streams = map[string][]*xstream{}
	n.dials = map[string]*dialCall{}
	n.subs = map[*subscriber]struct{}{}
	n.changed = make(chan struct{})
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.mu.Unlock()
	// The lock is not held from here on: mDNS events (onBrowse) may arrive
	// before Start returns, and stopping mDNS waits for them.
	defer func() {
		if err != nil {
			n.cancel()
			n.mu.Lock()
			n.closed = true
			n.mu.Unlock()
		}
	}()

	listen := n.Listen
	if listen == "" {
		listen = ":0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("linklocal: listening on %s: %w", listen, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	own := n.ownTXT(port)
	txt, err := own.Strings()
	if err != nil {
		_ = ln.Close()
		return err
	}
	n.mu.Lock()
	n.txt = own
	n.mu.Unlock()
	if !n.NoMulticast {
		ifaces, err := selectInterfaces(n.Interfaces)
		if err != nil {
			_ = ln.Close()
			return err
		}
		for _, ifi := range ifaces {
			n.mdnsLoopback = n.mdnsLoopback || ifi.Flags&net.FlagLoopback != 0
		}
		sd, err := startDNSSD(ctx, dnssdConfig{
			instance: n.Name,
			host:     n.machine,
			port:     uint16(port),
			txt:      txt,
			ifaces:   ifaces,
			interval: n.lim.QueryInterval,
			log:      n.log,
			events:   n.onBrowse,
		})
		if err != nil {
			_ = ln.Close()
			return err
		}
		n.sd = sd
	}
	n.mu.Lock()
	n.ln = ln
	n.mu.Unlock()
	n.wg.Add(1)
	go n.acceptLoop()
	n.log.Info("linklocal: node started", "listen", ln.Addr(), "mdns", n.sd != nil)
	return nil
}

// ownTXT builds this node's TXT record.
func (n *Node) ownTXT(port int) TXT {
	ver := n.Caps.Ver()
	return TXT{
		Status: n.Status, Msg: n.Msg,
		Nick: n.Nick, First: n.First, Last: n.Last, Email: n.Email, JID: n.JID,
		Node: strings.TrimSuffix(n.Caps.CapsNode(), "#"+ver), Hash: "sha-1", Ver: ver,
		PortP2PJ: port,
	}
}

// Addr returns the address streams are accepted on (nil before Start).
func (n *Node) Addr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ln == nil {
		return nil
	}
	return n.ln.Addr()
}

// LocalAddr returns this node's name as a JID (jingle.IQSender).
func (n *Node) LocalAddr() jid.JID { return n.name }

// TXT returns the TXT record this node advertises.
func (n *Node) TXT() TXT {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.txt
}

// SetPresence changes the advertised status ("avail", "away", "dnd") and
// message; mDNS announces the new TXT record.
func (n *Node) SetPresence(status, msg string) error {
	n.mu.Lock()
	if !n.started || n.closed {
		n.mu.Unlock()
		return ErrNotStarted
	}
	t := n.txt
	t.Status, t.Msg = status, msg
	txt, err := t.Strings()
	if err != nil {
		n.mu.Unlock()
		return err
	}
	n.txt = t
	sd := n.sd
	n.mu.Unlock()
	if sd == nil {
		return nil
	}
	return sd.setTXT(txt)
}

// Close says goodbye over mDNS, closes every stream (waiting up to
// Limits.CloseTimeout for the peers to close theirs) and stops every
// goroutine of the node.
func (n *Node) Close() error {
	n.mu.Lock()
	if !n.started || n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	var streams []*xstream
	for _, ss := range n.streams {
		streams = append(streams, ss...)
	}
	for s := range n.subs {
		s.stop()
		close(s.ch)
	}
	clear(n.subs)
	n.mu.Unlock()

	n.cancel()
	var errs []error
	if err := n.ln.Close(); err != nil {
		errs = append(errs, err)
	}
	if n.sd != nil {
		if err := n.sd.close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, st := range streams {
		n.closeStream(st)
	}
	n.wg.Wait()
	return errors.Join(errs...)
}

// closeStream sends the closing stream tag; the serving goroutine ends
// when the peer closes its side or the close timeout passes.
func (n *Node) closeStream(st *xstream) {
	st.dc.Thaw()
	dl := time.Now().Add(n.lim.CloseTimeout)
	_ = st.dc.SetWriteDeadline(dl)
	if err := st.sess.Close(); err != nil {
		n.log.Debug("linklocal: closing stream", "peer", st.peer.String(), "error", err)
	}
	_ = st.dc.SetReadDeadline(dl)
}

// acceptLoop accepts connections until the listener closes.
func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("linklocal: accept", "error", err)
			select {
			case <-time.After(50 * time.Millisecond):
			case <-n.ctx.Done():
				return
			}
			continue
		}
		if !n.reserve() {
			n.log.Warn("linklocal: refusing connection: too many streams", "remote", c.RemoteAddr())
			_ = c.Close()
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.serveIncoming(c)
		}()
	}
}

func (n *Node) reserve() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.nstreams >= n.lim.MaxStreams {
		return false
	}
	n.nstreams++
	return true
}

func (n *Node) release() {
	n.mu.Lock()
	n.nstreams--
	n.mu.Unlock()
}

// streamInfo is the disco#info sent in stream features.
func (n *Node) streamInfo() xmppclient.Info {
	i := n.Caps.Info()
	i.Node = n.Caps.CapsNode()
	return i
}

// serveIncoming negotiates a stream a peer opened and serves it.
func (n *Node) serveIncoming(c net.Conn) {
	remote := addrOf(c.RemoteAddr())
	lc := newLimitConn(c, n.lim.MaxHeaderBytes)
	dc := deadline.Wrap(lc)
	ctx, cancel := context.WithTimeout(n.ctx, n.lim.NegotiateTimeout)
	stop := bound(ctx, c)
	var peer jid.JID
	sess, err := xmpp.ReceiveSession(context.Background(), dc, 0, acceptNegotiator(acceptConfig{
		ctx:       ctx,
		local:     n.name,
		authorize: n.authorizer(remote),
		info:      n.streamInfo(),
		peer:      &peer,
	}))
	if err == nil && !stop() {
		err = ctx.Err()
	}
	cancel()
	if err != nil {
		n.log.Warn("linklocal: refused incoming stream", "remote", c.RemoteAddr(), "error", err)
		_ = dc.Close()
		n.release()
		return
	}
	_ = c.SetDeadline(time.Time{})
	dc.Freeze()
	lc.lift()
	st, err := n.register(sess, dc, c.RemoteAddr(), peer, false, nil)
	if err != nil {
		_ = dc.Close()
		n.release()
		return
	}
	n.log.Info("linklocal: incoming stream", "peer", peer.String(), "remote", c.RemoteAddr())
	n.serveStream(st)
}

// register records a negotiated stream.
func (n *Node) register(sess *xmpp.Session, dc *deadline.Conn, remote net.Addr, peer jid.JID, outgoing bool, info *xmppclient.Info) (*xstream, error) {
	st := &xstream{peer: peer, sess: sess, dc: dc, remote: remote, outgoing: outgoing}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	st.ctx, st.cancel = context.WithCancel(n.ctx)
	key := peer.String()
	n.streams[key] = append(n.streams[key], st)
	e := n.entry(peer)
	if info != nil {
		e.info = info
		n.checkVer(e)
	}
	return st, nil
}

// checkVer logs when the disco#info a peer sent does not hash to the ver
// its TXT record advertises.
func (n *Node) checkVer(e *peerEntry) {
	if e.browsed == nil || e.browsed.TXT.Ver == "" || e.info == nil {
		return
	}
	if ver, err := xmppclient.ComputeVer(*e.info); err != nil || ver != e.browsed.TXT.Ver {
		n.log.Warn("linklocal: peer's disco#info does not match its advertised caps", "peer", e.name.String(), "advertised", e.browsed.TXT.Ver, "computed", ver, "error", err)
	}
}

// entry returns the entry of name, creating an empty one. n.mu is held.
func (n *Node) entry(name jid.JID) *peerEntry {
	key := name.String()
	e := n.peers[key]
	if e == nil {
		e = &peerEntry{name: name}
		n.peers[key] = e
	}
	return e
}

// serveStream serves a stream until it ends.
func (n *Node) serveStream(st *xstream) {
	err := st.sess.Serve(n.streamHandler(st))
	st.cancel()
	_ = st.dc.Close()
	n.mu.Lock()
	key := st.peer.String()
	n.streams[key] = slices.DeleteFunc(n.streams[key], func(s *xstream) bool { return s == st })
	if len(n.streams[key]) == 0 {
		delete(n.streams, key)
		if e := n.peers[key]; e != nil && e.empty() {
			delete(n.peers, key)
		}
	}
	n.nstreams--
	n.mu.Unlock()
	if err != nil && n.ctx.Err() == nil {
		n.log.Info("linklocal: stream ended", "peer", st.peer.String(), "error", err)
	} else {
		n.log.Debug("linklocal: stream ended", "peer", st.peer.String(), "error", err)
	}
}

// streamHandler checks the addresses of each stanza of st before the
// shared handler sees it: 'from' must be the stream's peer (it is set when
// missing; any other value is an invalid-from stream error, RFC 6120
// §8.1.2.1), 'to' must be this node (set when missing; a stanza for anyone
// else is not handed on, and an IQ request gets service-unavailable).
func (n *Node) streamHandler(st *xstream) xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Space != stanza.NSClient || (start.Name.Local != "iq" && start.Name.Local != "message" && start.Name.Local != "presence") {
			return n.handler.HandleXMPP(t, start)
		}
		fromIdx, toIdx := -1, -1
		for i, a := range start.Attr {
			if a.Name.Space != "" {
				continue
			}
			switch a.Name.Local {
			case "from":
				fromIdx = i
			case "to":
				toIdx = i
			}
		}
		if fromIdx < 0 || start.Attr[fromIdx].Value == "" {
			if fromIdx < 0 {
				start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "from"}})
				fromIdx = len(start.Attr) - 1
			}
			start.Attr[fromIdx].Value = st.peer.String()
		} else if f, err := jid.Parse(start.Attr[fromIdx].Value); err != nil || !f.Bare().Equal(st.peer) {
			n.log.Warn("linklocal: stanza with a foreign 'from': closing the stream", "peer", st.peer.String(), "from", clip(start.Attr[fromIdx].Value))
			se := stream.InvalidFrom
			se.Text = []struct{ Lang, Value string }{{Value: fmt.Sprintf("this stream is from %s", st.peer)}}
			// mellium (v0.23.0) writes the stream error of a handler's error
			// without flushing it; write and flush it here (the handler
			// holds no output lock), then end the stream.
			w := st.sess.TokenWriter()
			if _, err := se.WriteXML(w); err == nil {
				_ = w.Flush()
			}
			_ = w.Close()
			return se
		}
		if toIdx < 0 || start.Attr[toIdx].Value == "" {
			if toIdx < 0 {
				start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "to"}})
				toIdx = len(start.Attr) - 1
			}
			start.Attr[toIdx].Value = n.name.String()
		} else if to, err := jid.Parse(start.Attr[toIdx].Value); err != nil || !to.Bare().Equal(n.name) {
			n.log.Debug("linklocal: dropping a stanza for someone else", "peer", st.peer.String(), "to", clip(start.Attr[toIdx].Value))
			return nil
		}
		return n.handler.HandleXMPP(t, start)
	})
}

// authorizer returns the check of the name a connecting peer claims
// (XEP-0174 §7): the connection must come from an address the name is
// advertised (or was added) at.
func (n *Node) authorizer(remote netip.Addr) func(context.Context, header) (jid.JID, error) {
	return func(ctx context.Context, h header) (jid.JID, error) {
		if !h.HasFrom {
			n.mu.Lock()
			var found []jid.JID
			for _, e := range n.peers {
				if e.hasAddr(remote) {
					found = append(found, e.name)
				}
			}
			n.mu.Unlock()
			if len(found) == 1 {
				return found[0], nil
			}
			return jid.JID{}, streamErr(ErrInvalidFrom, stream.InvalidFrom, "the stream header has no 'from' and %s is the address of %d known peers", remote, len(found))
		}
		name, err := ParseName(h.From.String())
		if err != nil {
			return jid.JID{}, streamErr(ErrInvalidFrom, stream.InvalidFrom, "%v", err)
		}
		if name.Equal(n.name) {
			return jid.JID{}, streamErr(ErrInvalidFrom, stream.InvalidFrom, "%s from %s claims this node's own name", name, remote)
		}
		match, known, addrs := n.addrMatches(name, remote)
		if !match && n.sd != nil {
			// The advertisement may be new or have changed: ask again.
			rctx, cancel := context.WithTimeout(ctx, n.lim.ResolveTimeout)
			n.sd.refresh()
			match, known, addrs = n.waitMatch(rctx, name, remote)
			cancel()
		}
		if match {
			return name, nil
		}
		if known {
			return jid.JID{}, streamErr(ErrInvalidFrom, stream.InvalidFrom, "%s is known at %v, not at %s", name, addrs, remote)
		}
		if !n.AcceptUnadvertised {
			return jid.JID{}, streamErr(ErrInvalidFrom, stream.InvalidFrom, "%s is not advertised, and unadvertised peers are not accepted", name)
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if e := n.peers[name.String()]; e != nil && !e.empty() && !e.hasAddr(remote) {
			return jid.JID{}, streamErr(ErrInvalidFrom, stream.InvalidFrom, "%s became known at another address", name)
		}
		if len(n.peers) >= n.lim.MaxPeers {
			return jid.JID{}, streamErr(ErrInvalidFrom, stream.PolicyViolation, "too many peers")
		}
		e := n.entry(name)
		e.inbound = &Peer{Name: name, Addr: remote, Addrs: []netip.Addr{remote}, Source: Inbound, Seen: time.Now()}
		n.log.Warn("linklocal: accepted a stream from an unadvertised name", "peer", name, "remote", remote)
		n.notify(PeerEvent{Type: PeerAdded, Peer: e.view()})
		return name, nil
	}
}

// addrMatches reports whether remote is an address of name, whether name is
// known at all, and at which addresses.
func (n *Node) addrMatches(name jid.JID, remote netip.Addr) (match, known bool, addrs []netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.peers[name.String()]
	if e == nil || e.empty() {
		return false, false, nil
	}
	return e.hasAddr(remote), true, e.view().Addrs
}

// waitMatch waits until remote is an address of name or ctx ends.
func (n *Node) waitMatch(ctx context.Context, name jid.JID, remote netip.Addr) (match, known bool, addrs []netip.Addr) {
	for {
		n.mu.Lock()
		ch := n.changed
		n.mu.Unlock()
		match, known, addrs = n.addrMatches(name, remote)
		if match {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// notify tells subscribers and waiters about a change. n.mu is held.
func (n *Node) notify(ev PeerEvent) {
	close(n.changed)
	n.changed = make(chan struct{})
	for s := range n.subs {
		select {
		case s.ch <- ev:
		default:
			n.log.Debug("linklocal: browse subscriber too slow; event dropped", "peer", ev.Peer.Name, "event", ev.Type)
		}
	}
}

// onBrowse takes an mDNS event.
func (n *Node) onBrowse(ev browseEvent) {
	name, err := ParseName(ev.instance)
	if err != nil {
		n.log.Debug("linklocal: ignoring an advertisement", "instance", clip(ev.instance), "error", err)
		return
	}
	if name.Equal(n.name) {
		return // ourselves (XEP-0174 §4.1: filter out)
	}
	if ev.gone {
		n.mu.Lock()
		defer n.mu.Unlock()
		e := n.peers[name.String()]
		if e == nil || e.browsed == nil || n.closed {
			return
		}
		e.browsed = nil
		n.disco.Forget(name)
		typ := PeerUpdated
		if e.empty() {
			typ = PeerRemoved
			if len(n.streams[name.String()]) == 0 {
				delete(n.peers, name.String())
			}
		}
		n.log.Info("linklocal: peer said goodbye", "peer", name)
		n.notify(PeerEvent{Type: typ, Peer: e.view()})
		return
	}
	addr := ev.addr.Unmap()
	if err := n.checkAdvertisedAddr(addr); err != nil {
		n.log.Warn("linklocal: ignoring an advertisement", "peer", name, "addr", addr, "error", err)
		return
	}
	if ev.port == 0 {
		n.log.Warn("linklocal: ignoring an advertisement with port 0", "peer", name)
		return
	}
	txt, txtErr := ParseTXT(ev.txt)
	if txtErr != nil {
		n.log.Warn("linklocal: ignoring the TXT record of a peer", "peer", name, "error", txtErr)
	} else if txt.PortP2PJ != 0 && txt.PortP2PJ != int(ev.port) {
		n.log.Info("linklocal: peer's port.p2pj differs from its SRV port; using the SRV port", "peer", name, "srv", ev.port, "port.p2pj", txt.PortP2PJ)
	}
	p := &Peer{
		Name: name, Host: ev.host, Addr: addr, Addrs: []netip.Addr{addr}, Port: int(ev.port),
		TXT: txt, TXTErr: txtErr, Source: Browsed, Seen: time.Now(),
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	key := name.String()
	e := n.peers[key]
	if e == nil && len(n.peers) >= n.lim.MaxPeers {
		n.log.Warn("linklocal: too many peers; ignoring an advertisement", "peer", name)
		return
	}
	if e == nil {
		e = n.entry(name)
	}
	typ := PeerUpdated
	if e.browsed == nil && e.static == nil && e.inbound == nil {
		typ = PeerAdded
	}
	e.browsed = p
	if txtErr == nil && txt.Ver != "" {
		n.disco.Observe(name, txt.Hash, txt.Node, txt.Ver)
	}
	n.checkVer(e)
	n.notify(PeerEvent{Type: typ, Peer: e.view()})
}

// checkAdvertisedAddr refuses addresses no peer can be at: unspecified,
// multicast, broadcast, and loopback unless mDNS runs on a loopback
// interface (else a remote advertisement could point this node at its own
// local services).
func (n *Node) checkAdvertisedAddr(a netip.Addr) error {
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return errors.New("not a unicast address")
	case a.IsLoopback() && !n.mdnsLoopback:
		return errors.New("loopback address advertised on a non-loopback interface")
	}
	return nil
}

// Peers returns the known peers, sorted by name.
func (n *Node) Peers() []Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Peer
	for _, e := range n.peers {
		if !e.empty() {
			out = append(out, e.view())
		}
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name.String(), b.Name.String()) })
	return out
}

// Browse returns a channel that first receives PeerAdded for every peer
// known now, then every change, until ctx ends or the node closes (the
// channel is then closed). A subscriber that does not keep up loses
// events (the buffer holds 64 beyond the initial peers); Peers gives the
// current state at any time.
func (n *Node) Browse(ctx context.Context) <-chan PeerEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := make(chan PeerEvent, len(n.peers)+64)
	if !n.started || n.closed {
		close(ch)
		return ch
	}
	for _, e := range n.peers {
		if !e.empty() {
			ch <- PeerEvent{Type: PeerAdded, Peer: e.view()}
		}
	}
	s := &subscriber{ch: ch}
	n.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := n.subs[s]; ok {
			delete(n.subs, s)
			close(ch)
		}
	})
	return ch
}

// Resolve returns the peer called name, waiting for its advertisement if
// it is not known yet (up to ctx's deadline, or Limits.ResolveTimeout when
// ctx has none). It fails with an error wrapping ErrUnknownPeer.
func (n *Node) Resolve(ctx context.Context, name string) (Peer, error) {
	j, err := ParseName(name)
	if err != nil {
		return Peer{}, err
	}
	return n.resolve(ctx, j)
}

func (n *Node) resolve(ctx context.Context, j jid.JID) (Peer, error) {
	if !n.isRunning() {
		return Peer{}, ErrNotStarted
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.lim.ResolveTimeout)
		defer cancel()
	}
	asked := false
	for {
		n.mu.Lock()
		e := n.peers[j.String()]
		ch := n.changed
		n.mu.Unlock()
		if e != nil {
			n.mu.Lock()
			p := e.view()
			n.mu.Unlock()
			if p.Port > 0 && p.Addr.IsValid() {
				return p, nil
			}
		}
		if n.sd == nil {
			return Peer{}, fmt.Errorf("%w: %s (not added, and mDNS is off)", ErrUnknownPeer, j)
		}
		if !asked {
			n.sd.refresh()
			asked = true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Peer{}, fmt.Errorf("%w: %s is not advertised: %w", ErrUnknownPeer, j, ctx.Err())
		}
	}
}

func (n *Node) isRunning() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.started && !n.closed
}

// AddPeer makes a peer reachable without multicast DNS, at hostport
// ("host:port"; host a name or an address). With a name, it only records
// the peer: a stream from it must then come from one of host's addresses.
// With an empty name it connects at once and learns the name from the
// peer's stream header; the stream stays open.
func (n *Node) AddPeer(ctx context.Context, name, hostport string) (Peer, error) {
	if !n.isRunning() {
		return Peer{}, ErrNotStarted
	}
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return Peer{}, fmt.Errorf("linklocal: peer address %q: %w", hostport, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || port > 65535 {
		return Peer{}, fmt.Errorf("linklocal: peer address %q: bad port", hostport)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return Peer{}, fmt.Errorf("linklocal: peer address %q: %w", hostport, err)
		}
		for _, a := range found {
			addrs = append(addrs, a.Unmap())
		}
	}
	if len(addrs) == 0 {
		return Peer{}, fmt.Errorf("linklocal: peer address %q: no address", hostport)
	}
	var j jid.JID
	if name != "" {
		if j, err = ParseName(name); err != nil {
			return Peer{}, err
		}
		if j.Equal(n.name) {
			return Peer{}, fmt.Errorf("%w: %s is this node's own name", ErrInvalidName, j)
		}
	} else {
		st, err := n.dialAddrs(ctx, jid.JID{}, addrs, port)
		if err != nil {
			return Peer{}, err
		}
		j = st.peer
		if ra := addrOf(st.remote); ra.IsValid() && !slices.Contains(addrs, ra) {
			addrs = append([]netip.Addr{ra}, addrs...)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.peers[j.String()]
	if e == nil && len(n.peers) >= n.lim.MaxPeers {
		return Peer{}, fmt.Errorf("linklocal: too many peers")
	}
	e = n.entry(j)
	typ := PeerUpdated
	if e.empty() {
		typ = PeerAdded
	}
	e.static = &Peer{Name: j, Addr: addrs[0], Addrs: addrs, Port: port, Source: Static, Seen: time.Now()}
	p := e.view()
	n.notify(PeerEvent{Type: typ, Peer: p})
	return p, nil
}

// stream returns an open stream to peer, opening one if needed (one dial
// at a time per peer).
func (n *Node) stream(ctx context.Context, peer jid.JID) (*xstream, error) {
	key := peer.String()
	for {
		n.mu.Lock()
		if !n.started || n.closed {
			n.mu.Unlock()
			return nil, ErrClosed
		}
		if ss := n.streams[key]; len(ss) > 0 {
			st := ss[0]
			n.mu.Unlock()
			return st, nil
		}
		if call := n.dials[key]; call != nil {
			n.mu.Unlock()
			select {
			case <-call.done:
				if call.err != nil {
					return nil, call.err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		call := &dialCall{done: make(chan struct{})}
		n.dials[key] = call
		n.mu.Unlock()

		st, err := n.dialPeer(ctx, peer)
		n.mu.Lock()
		delete(n.dials, key)
		call.err = err
		close(call.done)
		n.mu.Unlock()
		return st, err
	}
}

// dialPeer opens a stream to a named peer.
func (n *Node) dialPeer(ctx context.Context, peer jid.JID) (*xstream, error) {
	p, err := n.resolve(ctx, peer)
	if err != nil {
		return nil, err
	}
	addrs := []netip.Addr{p.Addr}
	for _, a := range p.Addrs {
		if a != p.Addr {
			addrs = append(addrs, a)
		}
	}
	return n.dialAddrs(ctx, peer, addrs, p.Port)
}

// dialAddrs connects to the first address that answers and opens a stream
// to expect (or to whoever answers, when expect is zero).
func (n *Node) dialAddrs(ctx context.Context, expect jid.JID, addrs []netip.Addr, port int) (*xstream, error) {
	ctx, cancel := context.WithTimeout(ctx, n.lim.NegotiateTimeout)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()
	var errs []error
	for _, a := range addrs {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			continue
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, err := n.openOutgoing(ctx, c, expect)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: %s has no usable address", ErrUnknownPeer, expect)
	}
	return nil, fmt.Errorf("linklocal: connecting to %s: %w", orAddr(expect, addrs), errors.Join(errs...))
}

func orAddr(j jid.JID, addrs []netip.Addr) string {
	if j.String() != "" {
		return j.String()
	}
	return fmt.Sprint(addrs)
}

// openOutgoing negotiates a stream on a connection this node made.
func (n *Node) openOutgoing(ctx context.Context, c net.Conn, expect jid.JID) (*xstream, error) {
	if !n.reserve() {
		_ = c.Close()
		return nil, ErrTooManyStreams
	}
	lc := newLimitConn(c, n.lim.MaxHeaderBytes)
	dc := deadline.Wrap(lc)
	var peer jid.JID
	var info *xmppclient.Info
	stop := bound(ctx, c)
	sess, err := xmpp.NewSession(context.Background(), expect, n.name, dc, 0, dialNegotiator(dialConfig{
		local: n.name, expect: expect, peer: &peer, info: &info,
	}))
	if err == nil && !stop() {
		err = ctx.Err()
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
		}
		_ = dc.Close()
		n.release()
		return nil, fmt.Errorf("linklocal: opening a stream to %s at %s: %w", orAddr(expect, nil), c.RemoteAddr(), err)
	}
	_ = c.SetDeadline(time.Time{})
	dc.Freeze()
	lc.lift()
	st, err := n.register(sess, dc, c.RemoteAddr(), peer, true, info)
	if err != nil {
		_ = dc.Close()
		n.release()
		return nil, err
	}
	n.log.Info("linklocal: outgoing stream", "peer", peer.String(), "remote", c.RemoteAddr())
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.serveStream(st)
	}()
	return st, nil
}

// Session returns the stream to peer as a mellium session, opening it if
// needed: to send messages or query the peer. Never send on it from inside
// a handler (see jingle's documentation).
func (n *Node) Session(ctx context.Context, peer jid.JID) (*xmpp.Session, error) {
	st, err := n.stream(ctx, peer.Bare())
	if err != nil {
		return nil, err
	}
	return st.sess, nil
}

// SendIQElement implements jingle.IQSender: it sends the IQ on the stream
// to iq.To (opening one when there is none), with 'from' set to this
// node's name, and returns the response. A response without 'from' is
// given the peer's name (the stream it came on says who sent it). The wait
// ends with ErrStreamClosed when the stream ends.
func (n *Node) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	if iq.To.String() == "" {
		return nil, fmt.Errorf("%w: IQ without 'to'", ErrUnknownPeer)
	}
	st, err := n.stream(ctx, iq.To.Bare())
	if err != nil {
		return nil, err
	}
	if iq.From.String() == "" {
		iq.From = n.name
	}
	sctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(st.ctx, func() { cancel(ErrStreamClosed) })
	resp, err := st.sess.SendIQElement(sctx, payload, iq)
	stop()
	if err != nil {
		if cause := context.Cause(sctx); errors.Is(cause, ErrStreamClosed) && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", ErrStreamClosed, err)
		}
		cancel(nil)
		return nil, err
	}
	cancel(nil)
	return &fromFixer{r: resp, from: iq.To.String()}, nil
}

// fromFixer adds a 'from' to a response that has none.
type fromFixer struct {
	r    xmlstream.TokenReadCloser
	from string
	done bool
}

func (f *fromFixer) Token() (xml.Token, error) {
	tok, err := f.r.Token()
	if f.done || tok == nil {
		return tok, err
	}
	if start, ok := tok.(xml.StartElement); ok {
		f.done = true
		start = start.Copy()
		i := slices.IndexFunc(start.Attr, func(a xml.Attr) bool { return a.Name.Space == "" && a.Name.Local == "from" })
		switch {
		case i < 0:
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: f.from})
		case start.Attr[i].Value == "":
			start.Attr[i].Value = f.from
		}
		return start, err
	}
	return tok, err
}

func (f *fromFixer) Close() error { return f.r.Close() }

// Disco returns the disco#info of peer: the one its stream features
// carried, else the answer to a query (cached by verified caps ver, as
// xmppclient.Disco does). The peer's Features are updated.
func (n *Node) Disco(ctx context.Context, peer jid.JID) (xmppclient.Info, error) {
	peer = peer.Bare()
	st, err := n.stream(ctx, peer)
	if err != nil {
		return xmppclient.Info{}, err
	}
	n.mu.Lock()
	if e := n.peers[peer.String()]; e != nil && e.info != nil {
		info := cloneInfo(*e.info)
		n.mu.Unlock()
		return info, nil
	}
	n.mu.Unlock()
	info, err := n.disco.Info(ctx, st.sess, peer)
	if err != nil {
		return xmppclient.Info{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e := n.peers[peer.String()]; e != nil {
		c := cloneInfo(info)
		e.info = &c
		if !e.empty() {
			n.notify(PeerEvent{Type: PeerUpdated, Peer: e.view()})
		}
	}
	return info, nil
}

// addrOf returns the IP of a TCP address.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// cloneInfo copies i so that callers never share its slices.
func cloneInfo(i xmppclient.Info) xmppclient.Info {
	i.Identities = slices.Clone(i.Identities)
	i.Features = slices.Clone(i.Features)
	forms := make([]xmppclient.Form, 0, len(i.Forms))
	for _, f := range i.Forms {
		fields := make([]xmppclient.Field, 0, len(f.Fields))
		for _, fl := range f.Fields {
			fl.Values = slices.Clone(fl.Values)
			fields = append(fields, fl)
		}
		f.Fields = fields
		forms = append(forms, f)
	}
	if len(forms) > 0 {
		i.Forms = forms
	}
	return i
}
