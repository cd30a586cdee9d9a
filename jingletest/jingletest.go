// Package jingletest provides a test application and test transport methods
// for exercising the Jingle session layer without a real application or
// transport: the application hands incoming sessions to the test, and the
// transports connect the two sides of a content through an in-process
// Exchange. Join (in a test) and Connect put a Manager on an
// xmpptest.Network.
package jingletest

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"sync"

	"github.com/jinglekit/jinglekit/jingle"
)

// Namespaces of the test application and transports.
const (
	AppNS          = "urn:jinglekit:test:app:0"
	PipeNS         = "urn:jinglekit:test:transport:pipe:0"
	BrokenNS       = "urn:jinglekit:test:transport:broken:0"
	InfoPayloadNS  = "urn:jinglekit:test:info:0"
	InfoPayloadTag = "nudge"
)

// Description is the test application's <description/>.
type Description struct {
	XMLName xml.Name `xml:"urn:jinglekit:test:app:0 description"`
	Label   string   `xml:"label,attr,omitempty"`
}

// Desc returns a test description element with a label.
func Desc(label string) jingle.Element {
	return jingle.MustElement(Description{Label: label})
}

// Nudge returns the session-info payload the test application understands.
func Nudge() jingle.Element {
	return jingle.MustElement(struct {
		XMLName xml.Name `xml:"urn:jinglekit:test:info:0 nudge"`
	}{})
}

// App is the test application: every incoming session is sent on Sessions
// and HandleSession waits until the session ends.
type App struct {
	Sessions chan *jingle.Session
}

// NewApp returns an App whose channel holds up to 16 sessions.
func NewApp() *App { return &App{Sessions: make(chan *jingle.Session, 16)} }

// Namespaces implements jingle.Application.
func (a *App) Namespaces() []string { return []string{AppNS} }

// HandleSession implements jingle.Application.
func (a *App) HandleSession(ctx context.Context, s *jingle.Session) {
	select {
	case a.Sessions <- s:
	case <-ctx.Done():
		return
	}
	<-ctx.Done()
}

// UnderstandsInfo implements jingle.InfoUnderstander: only the nudge.
func (a *App) UnderstandsInfo(n xml.Name) bool {
	return n.Space == InfoPayloadNS && n.Local == InfoPayloadTag
}

// Exchange pairs the two sides of pipe transports by session and content.
type Exchange struct {
	mu    sync.Mutex
	conns map[string]net.Conn
}

// NewExchange returns an empty Exchange.
func NewExchange() *Exchange { return &Exchange{conns: map[string]net.Conn{}} }

func (x *Exchange) take(key string, initiator bool) net.Conn {
	x.mu.Lock()
	defer x.mu.Unlock()
	side := key + "/r"
	if initiator {
		side = key + "/i"
	}
	if c, ok := x.conns[side]; ok {
		delete(x.conns, side)
		return c
	}
	a, b := net.Pipe()
	if initiator {
		x.conns[key+"/r"] = b
	} else {
		x.conns[key+"/i"] = b
	}
	return a
}

// PipeMethod is a stream transport whose two sides meet in an Exchange. It
// records what the session layer told it, for tests to check.
type PipeMethod struct {
	NS string // defaults to PipeNS
	X  *Exchange
	// Fail makes Dial fail with ErrTransportFailed.
	Fail bool
	// Hang makes Dial wait until its context ends or the transport is
	// closed, as a transport that never comes up (an IBB <open/> that
	// never arrives).
	Hang bool

	mu         sync.Mutex
	transports []*PipeTransport
}

// Namespace implements jingle.TransportMethod.
func (m *PipeMethod) Namespace() string {
	if m.NS == "" {
		return PipeNS
	}
	return m.NS
}

// Kind implements jingle.TransportMethod.
func (m *PipeMethod) Kind() jingle.TransportKind { return jingle.Stream }

// NewTransport implements jingle.TransportMethod.
func (m *PipeMethod) NewTransport(ctx context.Context, p jingle.TransportParams) (jingle.Transport, error) {
	t := &PipeTransport{m: m, p: p, ready: make(chan struct{}), closing: make(chan struct{})}
	if p.Offer != nil {
		t.remote = []jingle.Element{*p.Offer}
	}
	m.mu.Lock()
	m.transports = append(m.transports, t)
	m.mu.Unlock()
	return t, nil
}

// Transports returns the transports made so far.
func (m *PipeMethod) Transports() []*PipeTransport {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*PipeTransport(nil), m.transports...)
}

// PipeTransport is one side of a pipe transport.
type PipeTransport struct {
	m       *PipeMethod
	p       jingle.TransportParams
	ready   chan struct{}
	closing chan struct{} // closed by Close

	mu     sync.Mutex
	remote []jingle.Element // offer or answer, then infos
	infos  []jingle.Element
	closed bool
	conn   net.Conn
}

// Params returns what the transport was created with.
func (t *PipeTransport) Params() jingle.TransportParams { return t.p }

// Local implements jingle.Transport.
func (t *PipeTransport) Local() jingle.Element {
	return jingle.MustElement(struct {
		XMLName xml.Name
		Side    string `xml:"side,attr"`
	}{XMLName: xml.Name{Space: t.m.Namespace(), Local: "transport"}, Side: string(t.role())})
}

func (t *PipeTransport) role() jingle.Creator {
	if t.p.Initiator {
		return jingle.CreatorInitiator
	}
	return jingle.CreatorResponder
}

// SetRemote implements jingle.Transport.
func (t *PipeTransport) SetRemote(ctx context.Context, answer jingle.Element) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.remote = append(t.remote, answer)
	return nil
}

// HandleInfo implements jingle.Transport.
func (t *PipeTransport) HandleInfo(ctx context.Context, info jingle.Element) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.infos = append(t.infos, info)
	return nil
}

// Remote returns the remote elements received (offer/answer).
func (t *PipeTransport) Remote() []jingle.Element {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]jingle.Element(nil), t.remote...)
}

// Infos returns the transport-info elements received.
func (t *PipeTransport) Infos() []jingle.Element {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]jingle.Element(nil), t.infos...)
}

// Closed reports whether Close was called.
func (t *PipeTransport) Closed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Dial implements jingle.StreamTransport.
func (t *PipeTransport) Dial(ctx context.Context) (net.Conn, error) {
	if t.m.Fail {
		return nil, fmt.Errorf("jingletest: %s: %w", t.m.Namespace(), jingle.ErrTransportFailed)
	}
	if t.m.Hang {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.closing:
			return nil, fmt.Errorf("jingletest: transport closed: %w", jingle.ErrTransportFailed)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("jingletest: transport closed: %w", jingle.ErrTransportFailed)
	}
	if t.conn == nil {
		t.conn = t.m.X.take(t.p.SID+"/"+string(t.p.Content.Creator)+"/"+t.p.Content.Name+"/"+t.m.Namespace(), t.p.Initiator)
	}
	return t.conn, nil
}

// Close implements jingle.Transport.
func (t *PipeTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		close(t.closing)
	}
	t.closed = true
	if t.conn != nil {
		return t.conn.Close()
	}
	return nil
}
