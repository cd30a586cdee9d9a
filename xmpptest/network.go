// Package xmpptest provides an in-memory XMPP network for fast unit tests.
//
// A [Network] is a tiny client-to-server router. Each call to
// [Network.Client] connects a real mellium [xmpp.Session] (namespace
// jabber:client, no TLS, no SASL, no resource binding) to the router over a
// [net.Pipe] and serves it with the given handler from a goroutine that the
// Network owns. The session's LocalAddr is the full JID passed to Client.
//
// # Routing
//
// The router stamps the from attribute of every stanza with the sender's full
// JID (so a client cannot spoof) and routes by the to attribute:
//
//   - to a connected full JID: delivered to that client.
//   - message to a bare JID (or to a full JID that is not connected): delivered
//     to every connected resource of that bare JID; dropped if there is none.
//   - presence without to: broadcast to every other connected client.
//   - presence to a bare JID: delivered to every connected resource of it.
//   - iq get/set to anything else (a bare JID, a resource that is not
//     connected, an unknown domain, the server domain, or without to): the
//     router answers on behalf of the server with a service-unavailable error
//     of type cancel whose from is the addressed JID (like a real server), or
//     jid-malformed for an unparsable to. The one exception is a disco#info get
//     to the server domain, which gets a minimal result (identity server/im).
//   - iq result/error, message and presence that cannot be delivered are
//     silently dropped.
//
// Stanzas are decoded with encoding/xml and re-encoded before delivery: the
// stanza element carries xmlns='jabber:client', children keep their own
// xmlns, redundant namespace declarations are removed and namespaced
// attributes get fresh prefixes. Each sender's stanzas are routed in order by
// that sender's reader goroutine into a per-recipient queue (1024 stanzas)
// drained by the recipient's own writer goroutine, so a slow client stalls
// nobody unless its queue fills up; then only senders to it wait.
//
// A test can observe, alter or drop traffic with [Network.SetFilter] and can
// deliver arbitrary (for example spoofed) stanzas with [Network.Inject].
//
// # Handlers must not use their own session
//
// mellium's Serve holds the session's input stream while a handler runs (and
// its output stream once the handler has written to the TokenReadEncoder it was
// given). Consequently, inside a handler:
//
//   - SendIQ and friends on the same session can never receive their response
//     (Serve is the only reader and it is busy running this handler); they
//     block until their context expires.
//   - Send, Encode and friends on the same session block forever, without
//     honouring their context, once the handler has written anything to its
//     TokenReadEncoder.
//
// A handler must therefore reply only through the TokenReadEncoder it is given,
// return promptly, and do any further work (sending requests, waiting for
// answers) from a goroutine of its own. TestHandlerMustNotUseSession proves
// both behaviours.
//
// # Other mellium behaviour worth knowing
//
//   - IQ responses are matched to a pending SendIQ by id alone; the from
//     attribute is not checked, so code that must resist spoofing has to
//     compare it with the request's to itself (TestMelliumQuirks).
//   - On input, a from attribute equal to the session's own bare JID is
//     rewritten to empty before the handler sees it.
//   - Serve answers every get/set IQ the handler did not answer with
//     service-unavailable.
//   - A pending SendIQ is not aborted when the stream ends (Disconnect, Close);
//     only its context ends it.
package xmpptest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jinglekit/jinglekit/xmppclient/deadline"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

const (
	nsStream = "http://etherx.jabber.org/streams"
	// queueLen is the number of stanzas that may wait for one client.
	queueLen = 1024
	// closeGrace bounds how long a graceful stream close may take before the
	// pipe is torn down.
	closeGrace = 2 * time.Second
)

var (
	// ErrClosed is returned when the Network has been closed.
	ErrClosed = errors.New("xmpptest: network closed")
	// ErrNotConnected is returned when no client with the given JID is connected.
	ErrNotConnected = errors.New("xmpptest: not connected")
)

// Network is an in-memory XMPP server for a single domain.
// Create it with New and release it with Close.
// All methods are safe for concurrent use.
type Network struct {
	domain jid.JID

	mu      sync.Mutex
	closed  bool
	nextID  int
	clients map[string]*conn   // connected clients by full JID
	conns   map[*conn]struct{} // clients not yet shut down (including those that left)
	filter  func(from, to jid.JID, stanza []byte) []byte
	logf    func(format string, args ...any)
}

// New returns an empty Network serving domain (eg. "example.net").
// It panics if domain is not a valid domain JID.
func New(domain string) *Network {
	d, err := jid.Parse(domain)
	if err != nil || !d.Equal(d.Domain()) {
		panic(fmt.Sprintf("xmpptest: invalid domain %q", domain))
	}
	return &Network{
		domain:  d,
		clients: make(map[string]*conn),
		conns:   make(map[*conn]struct{}),
	}
}

// SetFilter installs f to observe, alter or drop traffic; nil removes it.
// f is called once per delivery (after the from attribute has been stamped)
// with the sender, the recipient client's full JID (which may differ from the
// stanza's to attribute, eg. for broadcasts) and the encoded stanza. It returns
// the stanza to deliver, which must be a single well-formed element, or nil to
// drop it. Errors generated by the router pass through f with from set to the
// JID they are sent on behalf of; stanzas sent with Inject do not.
// f runs on router goroutines, possibly concurrently, and must not block.
func (n *Network) SetFilter(f func(from, to jid.JID, stanza []byte) []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.filter = f
}

// SetLogf installs a function that reports unexpected errors, such as a Serve
// call that ended with an error (eg. because a handler returned one).
func (n *Network) SetLogf(logf func(format string, args ...any)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.logf = logf
}

// Client connects a session for the full JID j and serves it with h (usually a
// *mux.ServeMux; nil ignores inbound stanzas and lets mellium answer IQs with
// service-unavailable).
// The returned session is already being served by a goroutine the Network owns;
// do not call Serve on it. ctx bounds stream negotiation only.
func (n *Network) Client(ctx context.Context, j jid.JID, h xmpp.Handler) (*xmpp.Session, error) {
	if j.Localpart() == "" || j.Resourcepart() == "" {
		return nil, fmt.Errorf("xmpptest: client JID %q is not a full JID", j)
	}
	n.mu.Lock()
	closed := n.closed
	n.nextID++
	streamID := fmt.Sprintf("xmpptest-%d", n.nextID)
	n.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}

	pconn, rconn := net.Pipe()
	// mellium's context deadlines race with concurrent use of the stream;
	// see package xmppclient/deadline.
	cconn := deadline.Wrap(pconn)
	c := &conn{
		n:         n,
		j:         j,
		cconn:     cconn,
		rconn:     rconn,
		d:         xml.NewDecoder(rconn),
		queue:     make(chan []byte, queueLen),
		quit:      make(chan struct{}),
		readDone:  make(chan struct{}),
		serveDone: make(chan struct{}),
	}
	hs := make(chan error, 1)
	go func() { hs <- c.handshake(streamID) }()
	sess, err := xmpp.NewClientSession(ctx, j, cconn)
	if err == nil {
		cconn.Freeze()
	}
	if err == nil {
		select {
		case err = <-hs:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		cconn.Close()
		rconn.Close()
		<-hs
		return nil, fmt.Errorf("xmpptest: negotiating session for %s: %w", j, err)
	}
	c.sess = sess

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		err = ErrClosed
	} else if _, dup := n.clients[j.String()]; dup {
		err = fmt.Errorf("xmpptest: %s is already connected", j)
	}
	if err != nil {
		cconn.Close()
		rconn.Close()
		return nil, err
	}
	n.clients[j.String()] = c
	n.conns[c] = struct{}{}
	c.wg.Add(3)
	go c.readLoop()
	go c.writeLoop()
	go c.serve(h)
	return sess, nil
}

// Disconnect takes the client j offline: the router stops routing to it, ends
// its stream (so its Serve returns) and waits for its goroutines to finish.
// Later IQs to j are answered with service-unavailable.
func (n *Network) Disconnect(j jid.JID) error {
	n.mu.Lock()
	c, ok := n.clients[j.String()]
	if ok {
		delete(n.clients, j.String())
		delete(n.conns, c)
	}
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("xmpptest: disconnect %s: %w", j, ErrNotConnected)
	}
	c.shutdown()
	return nil
}

// Inject delivers raw, which must be a single XML element (normally a stanza),
// to the connected client to exactly as written: the from attribute is not
// stamped and the filter is not applied. An element without an xmlns
// attribute is in the stream's jabber:client namespace.
// It returns once the stanza is queued for delivery.
func (n *Network) Inject(ctx context.Context, to jid.JID, raw string) error {
	if err := checkElement(raw); err != nil {
		return fmt.Errorf("xmpptest: inject: %w", err)
	}
	c := n.client(to)
	if c == nil {
		return fmt.Errorf("xmpptest: inject to %s: %w", to, ErrNotConnected)
	}
	select {
	case c.queue <- []byte(raw):
		return nil
	case <-c.quit:
		return fmt.Errorf("xmpptest: inject to %s: %w", to, ErrNotConnected)
	case <-ctx.Done():
		return fmt.Errorf("xmpptest: inject to %s: %w", to, ctx.Err())
	}
}

// Close ends every client's stream, tears down the pipes and waits for all
// goroutines owned by the Network. It always returns nil; calling it again
// has no effect.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	conns := n.conns
	n.conns = nil
	n.clients = nil
	n.mu.Unlock()

	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(c.shutdown)
	}
	wg.Wait()
	return nil
}

// client returns the connected client with full JID j, or nil.
func (n *Network) client(j jid.JID) *conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clients[j.String()]
}

// resources returns, sorted by JID, the connected clients whose bare JID is
// bare, or every client except src if bare is the zero JID.
func (n *Network) resources(bare jid.JID, src *conn) []*conn {
	n.mu.Lock()
	var cs []*conn
	for _, c := range n.clients {
		if c != src && (bare.Equal(jid.JID{}) || c.j.Bare().Equal(bare)) {
			cs = append(cs, c)
		}
	}
	n.mu.Unlock()
	sort.Slice(cs, func(i, k int) bool { return cs[i].j.String() < cs[k].j.String() })
	return cs
}

// leave unregisters c after its stream ended on the client side.
func (n *Network) leave(c *conn) {
	n.mu.Lock()
	if n.clients[c.j.String()] == c {
		delete(n.clients, c.j.String())
	}
	n.mu.Unlock()
	c.stop()
}

func (n *Network) log(format string, args ...any) {
	n.mu.Lock()
	logf := n.logf
	n.mu.Unlock()
	if logf != nil {
		logf(format, args...)
	}
}

// conn is the router's end of one client connection.
type conn struct {
	n            *Network
	j            jid.JID
	sess         *xmpp.Session
	cconn, rconn net.Conn     // client and router ends of the pipe
	d            *xml.Decoder // reads rconn
	queue        chan []byte  // stanzas waiting to be written to the client
	quit         chan struct{}
	stopOnce     sync.Once
	readDone     chan struct{}
	serveDone    chan struct{}
	wg           sync.WaitGroup // readLoop, writeLoop and serve
}

// handshake reads the client's stream header and answers with a stream header
// and an empty feature list, which completes mellium's client negotiation.
func (c *conn) handshake(streamID string) error {
	for {
		tok, err := c.d.Token()
		if err != nil {
			return fmt.Errorf("reading stream header: %w", err)
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.CharData:
			continue
		case xml.StartElement:
			if t.Name != (xml.Name{Space: nsStream, Local: "stream"}) {
				return fmt.Errorf("expected stream header, got %v", t.Name)
			}
			for _, a := range t.Attr {
				if a.Name == (xml.Name{Local: "xmlns"}) && a.Value != "jabber:client" {
					return fmt.Errorf("unexpected stream namespace %q", a.Value)
				}
			}
			_, err = fmt.Fprintf(c.rconn, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<stream:stream xmlns="jabber:client" xmlns:stream="%s" version="1.0" id="%s" from="%s" to="%s">`+
				`<stream:features></stream:features>`,
				nsStream, streamID, escape(c.n.domain.String()), escape(c.j.String()))
			if err != nil {
				return fmt.Errorf("writing stream header: %w", err)
			}
			return nil
		default:
			return fmt.Errorf("unexpected %T before stream header", tok)
		}
	}
}

// readLoop reads the client's stanzas and routes them until its stream ends.
func (c *conn) readLoop() {
	defer c.wg.Done()
	defer close(c.readDone)
	defer c.n.leave(c)
	for {
		tok, err := c.d.Token()
		if err != nil {
			return
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != "jabber:client" || (t.Name.Local != "iq" && t.Name.Local != "message" && t.Name.Local != "presence") {
				// Stream errors and unsupported top-level elements are ignored.
				if c.d.Skip() != nil {
					return
				}
				continue
			}
			s, err := c.readStanza(t)
			if err != nil {
				c.n.log("xmpptest: %s: reading stanza: %v", c.j, err)
				return
			}
			c.n.route(c, s)
		case xml.EndElement: // </stream:stream>
			return
		}
	}
}

// writeLoop writes queued stanzas to the client; once stopped it flushes the
// queue and ends the stream.
func (c *conn) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case b := <-c.queue:
			if _, err := c.rconn.Write(b); err != nil {
				c.stop()
				return
			}
		case <-c.quit:
			for {
				select {
				case b := <-c.queue:
					if _, err := c.rconn.Write(b); err != nil {
						return
					}
				default:
					_, _ = io.WriteString(c.rconn, "</stream:stream>")
					return
				}
			}
		}
	}
}

func (c *conn) serve(h xmpp.Handler) {
	defer c.wg.Done()
	defer close(c.serveDone)
	if err := c.sess.Serve(h); err != nil {
		c.n.log("xmpptest: %s: Serve: %v", c.j, err)
	}
}

// enqueue queues b for delivery, blocking while the queue is full. It drops b
// if the client is going away.
func (c *conn) enqueue(b []byte) {
	select {
	case c.queue <- b:
	case <-c.quit:
	}
}

// stop makes the writer end the client's stream.
func (c *conn) stop() { c.stopOnce.Do(func() { close(c.quit) }) }

// shutdown ends the stream gracefully if possible, then closes the pipe and
// waits for the connection's goroutines.
func (c *conn) shutdown() {
	c.stop()
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	for _, done := range []chan struct{}{c.readDone, c.serveDone} {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	c.rconn.Close()
	c.cconn.Close()
	c.wg.Wait()
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// checkElement reports whether raw is exactly one well-formed element.
func checkElement(raw string) error {
	d := xml.NewDecoder(strings.NewReader(raw))
	elements := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if elements++; elements > 1 {
				return errors.New("more than one element")
			}
			if err := d.Skip(); err != nil {
				return err
			}
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
				return errors.New("character data outside the element")
			}
		default:
			return fmt.Errorf("unexpected %T", tok)
		}
	}
	if elements == 0 {
		return errors.New("no element")
	}
	return nil
}
