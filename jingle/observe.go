package jingle

import (
	"context"
	"net"

	"mellium.im/xmpp/jid"
)

// TransportEventKind says what happened to a transport.
type TransportEventKind int

// Transport event kinds.
const (
	// TransportCreated: this side made its transport for a content — its
	// offer (Proposer) or its answer to the peer's.
	TransportCreated TransportEventKind = iota + 1
	// TransportAccepted: the peer answered this side's offer
	// (session-accept, content-accept or transport-accept); Err is set
	// when the transport refused the answer.
	TransportAccepted
	// TransportConnected: the transport is connected (Session.Conn).
	TransportConnected
	// TransportFailed: the transport could not connect; Err says why. The
	// session may replace it.
	TransportFailed
	// TransportReplaced: transport-replace completed; the content now
	// uses the method Namespace.
	TransportReplaced
	// TransportBytes: bytes moved on the stream Session.Conn returned;
	// Read and Written are those of one call.
	TransportBytes
)

func (k TransportEventKind) String() string {
	switch k {
	case TransportCreated:
		return "created"
	case TransportAccepted:
		return "accepted"
	case TransportConnected:
		return "connected"
	case TransportFailed:
		return "failed"
	case TransportReplaced:
		return "replaced"
	case TransportBytes:
		return "bytes"
	}
	return "unknown"
}

// TransportEvent is what an Observer is told.
type TransportEvent struct {
	Kind TransportEventKind
	// SID and Peer name the session; Initiator is true when this side
	// initiated it.
	SID       string
	Peer      jid.JID
	Initiator bool
	Content   ContentKey
	// Namespace is the transport method's.
	Namespace string
	// Proposer is true when this side offered the transport.
	Proposer bool
	// Transport is the content's transport, on TransportConnected: an
	// Observer may ask it for what its method exposes (such as which
	// candidate carries the bytes).
	Transport Transport
	Err       error
	// Read and Written are the bytes of one TransportBytes event.
	Read, Written int
}

// Observer is told what happens to the transports of a Manager's sessions
// (Manager.Observer): for tracing, metrics and progress reports.
// ObserveTransport is called from the sessions' goroutines and from the
// application's (Session.Conn, and the reads and writes of its stream); it
// must be safe for concurrent use and must not block.
type Observer interface {
	ObserveTransport(TransportEvent)
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(TransportEvent)

// ObserveTransport implements Observer.
func (f ObserverFunc) ObserveTransport(e TransportEvent) { f(e) }

// observe tells the Manager's Observer, if any, about content key.
func (s *Session) observe(kind TransportEventKind, key ContentKey, ns string, fill func(*TransportEvent)) {
	o := s.m.Observer
	if o == nil {
		return
	}
	e := TransportEvent{Kind: kind, SID: s.sid, Peer: s.peer, Initiator: s.initiator, Content: key, Namespace: ns}
	if fill != nil {
		fill(&e)
	}
	o.ObserveTransport(e)
}

// newTransport makes a transport with tm and tells the Observer.
func (s *Session) newTransport(ctx context.Context, tm TransportMethod, p TransportParams) (Transport, error) {
	t, err := tm.NewTransport(ctx, p)
	if err == nil {
		s.observe(TransportCreated, p.Content, tm.Namespace(), func(e *TransportEvent) { e.Proposer = p.Offer == nil })
	}
	return t, err
}

// observedConn reports the bytes moved on a stream to an Observer.
type observedConn struct {
	net.Conn
	s   *Session
	key ContentKey
	ns  string
}

// Unwrap returns the transport's stream, for the optional methods an
// application may look for on it (StreamAs): a half-close, a readiness
// callback, a block size. Its Read and Write only count what the
// stream's return, so the stream's readiness is the observed one's;
// reading or writing the stream itself would hide the bytes from the
// Observer.
func (c *observedConn) Unwrap() net.Conn { return c.Conn }

func (c *observedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.s.observe(TransportBytes, c.key, c.ns, func(e *TransportEvent) { e.Read = n })
	}
	return n, err
}

func (c *observedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.s.observe(TransportBytes, c.key, c.ns, func(e *TransportEvent) { e.Written = n })
	}
	return n, err
}

// observeConn wraps conn when the Manager has an Observer.
func (s *Session) observeConn(conn net.Conn, key ContentKey, ns string) net.Conn {
	if s.m.Observer == nil {
		return conn
	}
	return &observedConn{Conn: conn, s: s, key: key, ns: ns}
}

// StreamAs returns conn as a T, or the first stream conn wraps that is
// one, as errors.As does for errors: a wrapper that only watches its
// stream (the Observer's, on what Session.Conn returns) has
// Unwrap() net.Conn, and the optional methods of the transport's stream
// (CloseWrite, say) stay reachable through it. An application and a
// security layer look for them with StreamAs rather than a type
// assertion, which would not see past the wrapper.
func StreamAs[T any](conn net.Conn) (T, bool) {
	for {
		if t, ok := conn.(T); ok {
			return t, true
		}
		u, ok := conn.(interface{ Unwrap() net.Conn })
		if !ok {
			var zero T
			return zero, false
		}
		conn = u.Unwrap()
	}
}
