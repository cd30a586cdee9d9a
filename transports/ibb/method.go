package ibb

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

// Defaults of the Method's settings.
const (
	DefaultReadBuffer  = 1 << 20
	DefaultWindow      = 8
	DefaultHoldTimeout = 5 * time.Second
	DefaultIQTimeout   = 30 * time.Second
	DefaultOpenTimeout = 60 * time.Second
	// maxWindow bounds Window: more IQs in flight only fill the server's
	// queues.
	maxWindow = 256
	// DefaultMaxInFlight is the default of Method.MaxInFlight.
	DefaultMaxInFlight = 1024
)

// Method is the XEP-0261 Jingle In-Band Bytestreams transport method, a
// jingle.TransportMethod of kind Stream. Register it on a jingle.Manager
// and add Handler to the same mux as the Manager's handler: the Method
// answers the XEP-0047 <open/>, <data/> and <close/> stanzas of the
// bytestreams its transports negotiated, and only those.
//
// A Method serves one XMPP stream, like the Manager it is registered on.
// The zero value is ready to use; set the fields before first use and do
// not change them afterwards. A zero field means its default.
type Method struct {
	// BlockSize is the block size this side offers (default 4096, as
	// XEP-0047 §6 recommends; at most 65535). A peer may lower it.
	BlockSize int
	// MaxBlockSize is the largest block size accepted from a peer
	// (default 65535). A larger offer is answered with this value; an
	// offer above 65535 is refused. Servers limit stanza sizes: a block
	// of n bytes travels as about 4n/3 bytes of base64 plus ~150 bytes of
	// XML, so a peer behind a server with a 64 KiB stanza limit needs
	// blocks below ~48 KiB.
	MaxBlockSize int
	// ReadBuffer bounds the received bytes held for the reader (default
	// 1 MiB). Chunks are acknowledged at once while they fit; see the
	// package documentation for what happens when they do not.
	ReadBuffer int
	// Window is the number of data IQs in flight, sent and not yet
	// acknowledged (default 8, at most 256).
	Window int
	// MaxInFlight bounds the data IQs in flight over all the Method's
	// bytestreams together (default 1024; never below Window): each
	// holds a goroutine and its encoded block from the Write that hands
	// it over until its answer. A Write that would exceed it waits, like
	// one whose Window is full. With thousands of bytestreams writing at
	// once (issue 17: 10,000 slow senders released together), blocks
	// would otherwise queue for the one XMPP stream by the thousand.
	MaxInFlight int
	// HoldTimeout bounds how long an arriving chunk that does not fit in
	// the receive buffer waits for the reader to make room before the
	// bytestream is refused with resource-constraint (default 5s). The
	// wait holds the XMPP stream.
	HoldTimeout time.Duration
	// IQTimeout bounds the wait for the peer's answer to each <open/>,
	// <data/> and <close/> (default 30s).
	IQTimeout time.Duration
	// OpenTimeout bounds Dial's wait for the bytestream to open — the
	// peer's <open/>, or the answer to ours (default 60s). Dial then fails
	// with jingle.ErrTransportFailed, so that the session falls back or
	// ends instead of waiting forever for a peer that never opens.
	OpenTimeout time.Duration
	// Logger receives the Method's logs; nil means slog.Default().
	Logger *slog.Logger
	// Payloads, when set, holds the text of <data/> elements that the
	// stream's reader took out before the XML decoder (Payloads.Filter):
	// the handlers claim it there. Once Payloads.WriteFilter wraps the
	// stream's writer, the <data/> this Method sends carry references
	// that the filter replaces with their text past the XML encoder. Use
	// one Method per stream then.
	Payloads *Payloads

	mu      sync.Mutex
	streams map[streamKey]*Conn
	flight  chan struct{} // a token per data IQ in flight (MaxInFlight)
}

// streamKey names an IBB session: XEP-0047 sids are chosen by the peer,
// so they are only unique together with the peer's full JID.
type streamKey struct {
	peer string
	sid  string
}

// settings are a Method's fields with defaults applied.
type settings struct {
	blockSize, maxBlockSize int
	readBuffer, window      int
	maxInFlight             int
	hold, iqTimeout         time.Duration
	openTimeout             time.Duration
	log                     *slog.Logger
}

func (m *Method) settings() settings {
	s := settings{
		blockSize: m.BlockSize, maxBlockSize: m.MaxBlockSize,
		readBuffer: m.ReadBuffer, window: m.Window, maxInFlight: m.MaxInFlight,
		hold: m.HoldTimeout, iqTimeout: m.IQTimeout, openTimeout: m.OpenTimeout, log: m.Logger,
	}
	if s.openTimeout <= 0 {
		s.openTimeout = DefaultOpenTimeout
	}
	if s.maxBlockSize <= 0 || s.maxBlockSize > MaxBlockSize {
		s.maxBlockSize = MaxBlockSize
	}
	if s.blockSize <= 0 {
		s.blockSize = DefaultBlockSize
	}
	s.blockSize = min(s.blockSize, s.maxBlockSize)
	if s.readBuffer <= 0 {
		s.readBuffer = DefaultReadBuffer
	}
	if s.window <= 0 {
		s.window = DefaultWindow
	}
	s.window = min(s.window, maxWindow)
	if s.maxInFlight <= 0 {
		s.maxInFlight = DefaultMaxInFlight
	}
	s.maxInFlight = max(s.maxInFlight, s.window)
	if s.hold <= 0 {
		s.hold = DefaultHoldTimeout
	}
	if s.iqTimeout <= 0 {
		s.iqTimeout = DefaultIQTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Namespace implements jingle.TransportMethod.
func (m *Method) Namespace() string { return NSTransport }

// Kind implements jingle.TransportMethod: IBB carries a byte stream.
func (m *Method) Kind() jingle.TransportKind { return jingle.Stream }

// NewTransport implements jingle.TransportMethod. For a transport this side
// proposes (p.Offer nil) it picks a fresh sid and offers BlockSize; this
// side will send the IBB <open/> once the peer's answer arrives. For the
// peer's offer it answers with the offered block size lowered to
// MaxBlockSize and waits for the peer's <open/>. An offer that cannot be
// used (block-size missing, zero or above 65535, a bad sid or stanza
// value, a sid already in use with this peer) is refused with an error
// wrapping ErrOffer, so that the session layer declines it.
func (m *Method) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	if p.Stream == nil {
		return nil, errors.New("ibb: no XMPP stream to send on")
	}
	if p.Peer.Domainpart() == "" { // bare JIDs are peers too: link-local names (XEP-0174) have no resource
		return nil, fmt.Errorf("ibb: no peer JID (%q)", p.Peer)
	}
	cfg := m.settings()
	var sid string
	var block int
	if p.Offer == nil {
		block = cfg.blockSize
	} else {
		var o Transport
		if err := p.Offer.Decode(&o); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrOffer, err)
		}
		bs, ok := p.Offer.AttrValue("block-size")
		v, good := parseBlockSize(bs)
		switch {
		case !ok || !good:
			return nil, fmt.Errorf("%w: block-size %q", ErrOffer, bs)
		case v > MaxBlockSize:
			return nil, fmt.Errorf("%w: block-size %d above %d", ErrOffer, v, MaxBlockSize)
		case !validSID(o.SID):
			return nil, fmt.Errorf("%w: sid %q", ErrOffer, o.SID)
		case !validStanza(o.Stanza):
			return nil, fmt.Errorf("%w: stanza %q", ErrOffer, o.Stanza)
		}
		sid = o.SID
		block = min(v, cfg.maxBlockSize)
	}
	c := newConn(m, cfg, p, block)
	c.flight = m.flightSlots(cfg.maxInFlight)
	for tries := 0; ; tries++ {
		if p.Offer == nil {
			var err error
			if sid, err = newSID(); err != nil {
				return nil, err
			}
		}
		c.sid = sid
		if m.register(c) {
			break
		}
		if p.Offer != nil || tries > 8 {
			c.cancel()
			return nil, fmt.Errorf("%w: sid %q already in use with %s", ErrOffer, sid, p.Peer)
		}
	}
	return &transport{c: c}, nil
}

// flightSlots returns the Method's semaphore of data IQs in flight,
// made with n slots on first use.
func (m *Method) flightSlots(n int) chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.flight == nil {
		m.flight = make(chan struct{}, n)
	}
	return m.flight
}

func (m *Method) register(c *Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.streams == nil {
		m.streams = map[streamKey]*Conn{}
	}
	k := streamKey{peer: c.peer.String(), sid: c.sid}
	if _, dup := m.streams[k]; dup {
		return false
	}
	m.streams[k] = c
	return true
}

func (m *Method) unregister(c *Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := streamKey{peer: c.peer.String(), sid: c.sid}
	if m.streams[k] == c {
		delete(m.streams, k)
	}
}

// lookup returns the bytestream named by sid with the peer from, or nil.
func (m *Method) lookup(from jid.JID, sid string) *Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.streams[streamKey{peer: from.String(), sid: sid}]
}

// Streams returns the number of bytestreams the Method knows: negotiated,
// open, or closing. For tests and monitoring.
func (m *Method) Streams() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.streams)
}

var sidEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newSID returns a random IBB session id (an NMTOKEN).
func newSID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("ibb: generating sid: %w", err)
	}
	return sidEncoding.EncodeToString(b[:]), nil
}

// Features implements jingle.FeatureAdvertiser: besides the Jingle
// transport namespace, the XEP-0047 namespace the bytestreams use.
func (m *Method) Features() []string { return []string{NS} }
