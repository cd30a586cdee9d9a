package jingle

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Application is a Jingle application format — the "what" of a session:
// file transfer (XEP-0234), RTP media (XEP-0167), or a test application.
// Register it on a Manager; the Manager routes incoming sessions to it by
// the namespace of their <description/> elements.
type Application interface {
	// Namespaces lists the description namespaces the application handles,
	// preferred first. They are also advertised through service discovery.
	Namespaces() []string
	// HandleSession is called, in a goroutine the Manager owns, for each
	// incoming session-initiate whose contents all name this application.
	// The application accepts (s.Accept) or declines (s.Terminate) and reads
	// the session's events with s.NextEvent. ctx is cancelled when the
	// session ends or the Manager closes. When HandleSession returns, a
	// session that has not ended is terminated with success.
	HandleSession(ctx context.Context, s *Session)
}

// InfoUnderstander is implemented by an Application that accepts
// informational payloads (session-info such as ringing, hold or checksum,
// and description-info). A payload it does not understand is refused with
// feature-not-implemented and <unsupported-info/>, as XEP-0166 §6.8
// requires. An Application that does not implement it understands none.
type InfoUnderstander interface {
	UnderstandsInfo(payload xml.Name) bool
}

// FeatureAdvertiser is implemented by an Application or TransportMethod
// that supports service discovery features beyond its namespaces (file
// transfer's hash algorithms, say); Manager.Features includes them.
type FeatureAdvertiser interface {
	Features() []string
}

// TransportProvider is implemented by an Application that makes the
// transports of its own contents for some methods. RTP's ICE-UDP lives in
// the call's PeerConnection, while ICE-UDP for XEP-0343 data channels is a
// method of its own for every other application: for a content whose
// description is the application's, the Manager takes the application's
// method before a registered one of the same namespace, so both coexist.
// The methods are advertised with the Manager's features.
type TransportProvider interface {
	TransportMethods() []TransportMethod
}

// TransportKind says whether a transport carries a byte stream or datagrams
// (XEP-0166 §9).
type TransportKind int

// Transport kinds.
const (
	Stream TransportKind = iota + 1
	Datagram
)

func (k TransportKind) String() string {
	switch k {
	case Stream:
		return "stream"
	case Datagram:
		return "datagram"
	}
	return "unknown"
}

// TransportMethod is a Jingle transport method — the "how": in-band
// bytestreams, SOCKS5 bytestreams, ICE-UDP. Register it on a Manager; it
// creates one Transport per content.
type TransportMethod interface {
	// Namespace is the namespace of the method's <transport/> element.
	Namespace() string
	// Kind says what the transports it makes carry.
	Kind() TransportKind
	// NewTransport creates this side of a transport for one content. It may
	// block (to gather candidates, say) until ctx is done.
	NewTransport(ctx context.Context, p TransportParams) (Transport, error)
}

// TransportParams is what a TransportMethod is told about the content it
// makes a transport for.
type TransportParams struct {
	SID     string
	Content ContentKey
	// Local and Peer are the full JIDs of this side and the other.
	Local, Peer jid.JID
	// Initiator is true when this side initiated the session.
	Initiator bool
	// Description is the content's <description/>, so that a method serving
	// several applications (ICE-UDP for RTP and for data channels) can tell
	// them apart.
	Description *Element
	// Offer is the peer's <transport/> when the peer proposed this transport
	// (in session-initiate, content-add or transport-replace); nil when this
	// side proposes it.
	Offer *Element
	// Stream sends IQs to the peer, for transports that need more than
	// transport-info (IBB data, SOCKS5 proxy activation, disco).
	Stream IQSender
	// Signal sends transport-info for this content to the peer.
	Signal Signaler
}

// Signaler sends a transport's own messages to the peer.
type Signaler interface {
	// TransportInfo sends a transport-info action whose content carries t,
	// and waits for the peer's acknowledgement.
	TransportInfo(ctx context.Context, t Element) error
}

// AsyncSignaler is a Signaler that can send without waiting for the
// peer's acknowledgement: for a transport's reports (candidate-used, say)
// that nothing must wait on. The Signalers the Manager gives transports
// are AsyncSignalers.
type AsyncSignaler interface {
	Signaler
	// TransportInfoFunc sends a transport-info action whose content
	// carries t and, unless it returns an error, calls answered exactly
	// once with the peer's acknowledgement: nil, an *Error, or an error
	// when the wait passed, the stream ended or the session ended. ctx
	// bounds the write, and its deadline, if any, the wait (else
	// Limits.IQTimeout).
	//
	// On a stream that is an AsyncIQSender it returns once the IQ is
	// written, and answered runs later on the stream's goroutine or a
	// timer's: it must not block nor wait for the stream. On another
	// stream (*xmpp.Session, which can only wait in the caller) it waits
	// for the answer and calls answered before it returns.
	TransportInfoFunc(ctx context.Context, t Element, answered func(error)) error
}

// Transport is one side of the transport of one content.
//
// Methods other than Dial/Components are called from the session's own
// goroutine, one at a time and in the order the peer's actions arrived; they
// may send (through Signaler) but should not block for long. Dial and
// Components are called by the application from its goroutines. All methods
// must honour ctx and be safe to call concurrently with each other.
type Transport interface {
	// Local returns this side's <transport/> element: the offer, or the
	// answer to the peer's offer.
	Local() Element
	// SetRemote gives the transport the peer's answer to this side's offer
	// (from session-accept, content-accept or transport-accept).
	SetRemote(ctx context.Context, answer Element) error
	// HandleInfo processes a <transport/> the peer sent in transport-info.
	HandleInfo(ctx context.Context, info Element) error
	// Close releases the transport and any connection it made.
	Close() error
}

// StreamTransport is a Transport that yields a reliable byte stream.
type StreamTransport interface {
	Transport
	// Dial waits until the transport is connected and returns the stream.
	// It returns an error wrapping ErrTransportFailed when the method cannot
	// connect, so the session may fall back to another method.
	Dial(ctx context.Context) (net.Conn, error)
}

// DatagramTransport is a Transport that yields one packet connection per
// component (for RTP: component 1, and 2 for RTCP without rtcp-mux).
type DatagramTransport interface {
	Transport
	// Components waits until every component is connected.
	Components(ctx context.Context) ([]net.PacketConn, error)
}

// ReasonError is an error that says how the session must end. When the
// error of a StreamTransport's Dial is one (errors.As), Session.Conn
// terminates the session with its reason instead of falling back to
// another transport: transports/ice's SecurityError (a DTLS fingerprint
// mismatch, security-error) is one.
type ReasonError interface {
	error
	JingleReason() Reason
}

// ErrTransportFailed is wrapped by transport errors after which the session
// may replace the transport with another method.
var ErrTransportFailed = errors.New("jingle: transport failed")

// IQSender sends IQs over an XMPP stream; *xmpp.Session implements it. In
// serverless mode an implementation picks the direct stream to the peer.
type IQSender interface {
	LocalAddr() jid.JID
	SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error)
}

// AsyncIQSender is an IQSender that can send an IQ with no goroutine
// waiting for its answer (xmppclient.Client and xmppclient.IQTracker
// are): mellium's SendIQElement blocks its caller until the answer, a
// goroutine per IQ in flight. Given one (SetStream), a Manager sends
// what nothing waits on (AsyncSignaler) without holding a goroutine.
type AsyncIQSender interface {
	IQSender
	// SendIQFunc sends an IQ get or set wrapping payload and returns once
	// it is written; ctx bounds the write. Unless it returns an error,
	// answer is called exactly once, later: with the whole answer <iq/>
	// (readable only during the call), or with an error when wait passed
	// or the stream ended. answer must not block nor wait for the stream.
	SendIQFunc(ctx context.Context, payload xml.TokenReader, iq stanza.IQ, wait time.Duration, answer func(xml.TokenReader, error)) error
}
