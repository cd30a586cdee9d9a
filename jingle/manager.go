package jingle

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// Limits bound what a Manager accepts from peers. The zero value of a field
// means its default.
type Limits struct {
	// MaxSessions is the number of live sessions, all peers together
	// (default 256). A session-initiate beyond it is refused with
	// resource-constraint.
	MaxSessions int
	// MaxSessionsPerPeer is the number of live sessions with one full JID
	// (default 16); beyond it, resource-constraint.
	MaxSessionsPerPeer int
	// MaxStanzaBytes is the size of a <jingle/> element the Manager reads,
	// counted as names, attribute values and text (default 256 KiB). A
	// larger one is refused with policy-violation and changes nothing.
	MaxStanzaBytes int
	// MaxContents is the number of contents in one session (default 32).
	MaxContents int
	// MaxPending is the number of inbound actions of one session queued for
	// its goroutine and not yet taken by the application (default 256);
	// beyond it the peer is told resource-constraint.
	MaxPending int
	// IQTimeout bounds the wait for the peer's answer to an action when the
	// caller's context has no deadline (default 30s).
	IQTimeout time.Duration
	// MaxSessionsPerAccount is the number of live sessions with all the
	// resources of one bare JID together, pending ones included (default
	// 32); beyond it, resource-constraint. It keeps one account with many
	// resources from taking every session.
	MaxSessionsPerAccount int
	// TransportWait bounds the responder's wait, after its transport
	// failed, for the initiator's transport-replace (default 60s); the
	// session then ends with failed-transport.
	TransportWait time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxSessions, 256)
	def(&l.MaxSessionsPerPeer, 16)
	def(&l.MaxStanzaBytes, 256<<10)
	def(&l.MaxContents, 32)
	def(&l.MaxPending, 256)
	def(&l.MaxSessionsPerAccount, 32)
	if l.TransportWait <= 0 {
		l.TransportWait = 60 * time.Second
	}
	if l.IQTimeout <= 0 {
		l.IQTimeout = 30 * time.Second
	}
	return l
}

// ErrLimit is wrapped by errors that refuse work because a Limit was reached.
var ErrLimit = errors.New("jingle: limit reached")

// ErrClosed is returned by a Manager after Close.
var ErrClosed = errors.New("jingle: manager closed")

// Manager runs the Jingle sessions of one XMPP entity: it answers the
// <jingle/> IQs that arrive (register Handler on a mellium mux), routes them
// to sessions by peer and session id, and starts sessions (Initiate).
// Applications and transport methods plug in by namespace.
//
// The zero value is ready to use once Stream is set (SetStream); set the
// exported fields before first use and do not change them afterwards.
type Manager struct {
	// Logger receives the Manager's logs; nil means slog.Default().
	Logger *slog.Logger
	// Limits bound what peers can make the Manager do.
	Limits Limits
	// Observer, when set, is told what happens to the sessions'
	// transports.
	Observer Observer

	mu         sync.Mutex
	stream     IQSender
	apps       []Application
	appByNS    map[string]Application
	transports map[string]TransportMethod
	// appTransports are the methods applications make for their own
	// contents (TransportProvider), by application and method namespace.
	appTransports map[Application]map[string]TransportMethod
	tOrder        []string
	security      map[string]SecurityMethod
	sessions      map[sessionKey]*Session
	perPeer       map[string]int
	perAccount    map[string]int // bare JID → live sessions
	closed        bool
	closing       chan struct{}
	wg            sync.WaitGroup
}

type sessionKey struct {
	peer string // full JID, as a string
	sid  string
}

func (m *Manager) init() {
	if m.sessions == nil {
		m.sessions = map[sessionKey]*Session{}
		m.perPeer = map[string]int{}
		m.perAccount = map[string]int{}
		m.appByNS = map[string]Application{}
		m.transports = map[string]TransportMethod{}
		m.appTransports = map[Application]map[string]TransportMethod{}
		m.security = map[string]SecurityMethod{}
		m.closing = make(chan struct{})
	}
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

func (m *Manager) limits() Limits { return m.Limits.withDefaults() }

// SetStream sets the stream the Manager sends its IQs on. Call it once the
// XMPP session exists and before the first Initiate; incoming sessions need
// it too, to answer.
func (m *Manager) SetStream(s IQSender) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.stream = s
}

func (m *Manager) getStream() (IQSender, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stream == nil {
		return nil, errors.New("jingle: Manager has no stream (call SetStream)")
	}
	return m.stream, nil
}

// ErrDuplicate is wrapped by the errors of RegisterApplication and
// RegisterTransport when a namespace is already taken.
var ErrDuplicate = errors.New("jingle: namespace already registered")

// RegisterApplication plugs in an application for its namespaces, and the
// transport methods it makes for its own contents (TransportProvider). A
// description namespace another application already handles, or two
// methods of the application with one namespace, are an error wrapping
// ErrDuplicate, and nothing is registered.
func (m *Manager) RegisterApplication(app Application) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	for _, ns := range app.Namespaces() {
		if _, ok := m.appByNS[ns]; ok {
			return fmt.Errorf("jingle: application %q: %w", ns, ErrDuplicate)
		}
	}
	var own map[string]TransportMethod
	if tp, ok := app.(TransportProvider); ok {
		own = map[string]TransportMethod{}
		for _, t := range tp.TransportMethods() {
			if _, ok := own[t.Namespace()]; ok {
				return fmt.Errorf("jingle: transport %q of an application: %w", t.Namespace(), ErrDuplicate)
			}
			own[t.Namespace()] = t
		}
		m.appTransports[app] = own
	}
	m.apps = append(m.apps, app)
	for _, ns := range app.Namespaces() {
		m.appByNS[ns] = app
	}
	return nil
}

// RegisterTransport plugs in a transport method for the contents of every
// application (but those that make their own for its namespace, see
// TransportProvider). The order of registration is the order of
// preference when a caller does not name a method. A namespace registered
// before is an error wrapping ErrDuplicate.
func (m *Manager) RegisterTransport(t TransportMethod) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.transports[t.Namespace()]; ok {
		return fmt.Errorf("jingle: transport %q: %w", t.Namespace(), ErrDuplicate)
	}
	m.tOrder = append(m.tOrder, t.Namespace())
	m.transports[t.Namespace()] = t
	return nil
}

// Features returns the service discovery features of Jingle and of the
// registered applications and transport methods.
func (m *Manager) Features() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := []string{NS}
	for _, a := range m.apps {
		f = append(f, a.Namespaces()...)
		if fa, ok := a.(FeatureAdvertiser); ok {
			f = append(f, fa.Features()...)
		}
	}
	f = append(f, m.tOrder...)
	for ns, sm := range m.security {
		f = append(f, ns)
		if fa, ok := sm.(FeatureAdvertiser); ok {
			f = append(f, fa.Features()...)
		}
	}
	methods := slices.Collect(maps.Values(m.transports))
	for _, own := range m.appTransports {
		for ns, t := range own {
			f = append(f, ns)
			methods = append(methods, t)
		}
	}
	for _, t := range methods {
		if fa, ok := t.(FeatureAdvertiser); ok {
			f = append(f, fa.Features()...)
		}
	}
	slices.Sort(f)
	return slices.Compact(f)
}

// Transports returns the namespaces of the registered transport methods, in
// order of preference.
func (m *Manager) Transports() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.tOrder)
}

// transport returns the method of namespace ns for a content with
// description desc: the method of the description's application if it
// makes its own (TransportProvider), else the registered one.
func (m *Manager) transport(desc *Element, ns string) (TransportMethod, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if desc != nil {
		if t, ok := m.appTransports[m.appByNS[desc.Namespace()]][ns]; ok {
			return t, true
		}
	}
	t, ok := m.transports[ns]
	return t, ok
}

// transportsFor returns the methods offered for a content with description
// desc when the caller names none: the application's own, then the
// registered ones in order.
func (m *Manager) transportsFor(desc *Element) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	if desc != nil {
		for ns := range m.appTransports[m.appByNS[desc.Namespace()]] {
			out = append(out, ns)
		}
		slices.Sort(out)
	}
	for _, ns := range m.tOrder {
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

func (m *Manager) application(ns string) (Application, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.appByNS[ns]
	return a, ok
}

// Offer describes one content this side proposes, in session-initiate or
// content-add.
type Offer struct {
	Name        string
	Senders     Senders
	Disposition string
	Description Element
	// Security is the content's <security/> element, and Layer the
	// security layer that goes with it (it wraps the stream given by
	// Session.SecureConn). A Security without a Layer is sent as is.
	Security *Element
	Layer    Security
	// Transports are transport method namespaces in order of preference:
	// the first is offered, the others are fallbacks tried in turn (by
	// transport-replace) when a transport fails. Empty means every
	// registered method, in registration order.
	Transports []string
}

// Initiate starts a session with peer (a full JID): it sends
// session-initiate with the offered contents and returns once the peer has
// acknowledged it. The session is then pending until the peer accepts it
// (an Event with ActionSessionAccept) or terminates it.
func (m *Manager) Initiate(ctx context.Context, peer jid.JID, offers ...Offer) (*Session, error) {
	return m.InitiateWith(ctx, peer, InitiateOptions{}, offers...)
}

// InitiateOptions are the extras of InitiateWith.
type InitiateOptions struct {
	// SID is the session id; empty picks a random one. XEP-0353 sessions
	// use the proposal's id.
	SID string
	// Info are session-level children of the <jingle/>, such as XEP-0338's
	// <group/>.
	Info []Element
}

// InitiateWith is Initiate with a chosen session id and session-level
// children.
func (m *Manager) InitiateWith(ctx context.Context, peer jid.JID, opts InitiateOptions, offers ...Offer) (*Session, error) {
	stream, err := m.getStream()
	if err != nil {
		return nil, err
	}
	if len(offers) == 0 {
		return nil, errors.New("jingle: initiate: no content")
	}
	lim := m.limits()
	if len(offers) > lim.MaxContents {
		return nil, fmt.Errorf("jingle: initiate: %d contents: %w", len(offers), ErrLimit)
	}
	var app Application
	seen := map[string]bool{}
	for _, o := range offers {
		if o.Name == "" || seen[o.Name] {
			return nil, fmt.Errorf("jingle: initiate: content names must be unique and non-empty (%q)", o.Name)
		}
		seen[o.Name] = true
		a, ok := m.application(o.Description.Namespace())
		if !ok {
			return nil, fmt.Errorf("jingle: initiate: no application registered for %q", o.Description.Namespace())
		}
		app = a
	}
	sid := opts.SID
	if sid == "" {
		sid = NewSID()
	}
	s := newSession(m, stream.LocalAddr(), peer, sid, true)
	s.app = app
	if err := m.add(s, true); err != nil {
		s.cancel()
		return nil, err
	}
	s.start()
	fail := func(err error) (*Session, error) {
		s.end(&Reason{Condition: ReasonFailedApplication, Text: err.Error()}, false)
		return nil, err
	}
	j := &Jingle{Action: ActionSessionInitiate, Initiator: s.local.String(), SID: s.sid, Info: opts.Info}
	for _, o := range offers {
		c, err := s.newLocalContent(ctx, CreatorInitiator, o, contentActive)
		if err != nil {
			return fail(err)
		}
		j.Contents = append(j.Contents, c)
	}
	s.mu.Lock()
	s.initiating = true
	s.mu.Unlock()
	err = s.send(ctx, j)
	s.mu.Lock()
	s.initiating = false
	s.mu.Unlock()
	if err != nil {
		return fail(fmt.Errorf("jingle: session-initiate to %s: %w", peer, err))
	}
	return s, nil
}

// add registers a session, enforcing the limits.
func (m *Manager) add(s *Session, local bool) error {
	lim := m.limits()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if m.closed {
		return ErrClosed
	}
	key := sessionKey{s.peer.String(), s.sid}
	if _, ok := m.sessions[key]; ok {
		return NewError(ErrOutOfOrder, "session exists")
	}
	if len(m.sessions) >= lim.MaxSessions {
		return fmt.Errorf("jingle: %d sessions (the limit of all sessions): %w", lim.MaxSessions, ErrLimit)
	}
	if m.perPeer[key.peer] >= lim.MaxSessionsPerPeer {
		return fmt.Errorf("jingle: %d sessions with %s (the limit per peer): %w", lim.MaxSessionsPerPeer, key.peer, ErrLimit)
	}
	bare := s.peer.Bare().String()
	if m.perAccount[bare] >= lim.MaxSessionsPerAccount {
		return fmt.Errorf("jingle: %d sessions with the resources of %s (the limit per account): %w", lim.MaxSessionsPerAccount, bare, ErrLimit)
	}
	m.sessions[key] = s
	m.perPeer[key.peer]++
	m.perAccount[bare]++
	return nil
}

func (m *Manager) remove(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := sessionKey{s.peer.String(), s.sid}
	if m.sessions[key] == s {
		delete(m.sessions, key)
		if m.perPeer[key.peer]--; m.perPeer[key.peer] <= 0 {
			delete(m.perPeer, key.peer)
		}
		bare := s.peer.Bare().String()
		if m.perAccount[bare]--; m.perAccount[bare] <= 0 {
			delete(m.perAccount, bare)
		}
	}
}

func (m *Manager) lookup(peer jid.JID, sid string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[sessionKey{peer.String(), sid}]
}

// Session returns the live session with peer and sid, or nil.
func (m *Manager) Session(peer jid.JID, sid string) *Session { return m.lookup(peer, sid) }

// Sessions returns the live sessions.
func (m *Manager) Sessions() []*Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
	}
	return out
}

// PeerGone ends every live session with peer — a full JID, or every
// resource of a bare JID — with reason gone, without signalling: call it
// when the peer is known to be gone (its presence became unavailable), as
// a session-terminate could not reach it. The applications see a
// session-terminate event with that reason. It does not block, so it may
// be called from a stanza handler; it returns the number of sessions
// ended.
func (m *Manager) PeerGone(peer jid.JID) int {
	bare := peer.Resourcepart() == ""
	m.mu.Lock()
	var gone []*Session
	for _, s := range m.sessions {
		if s.peer.Equal(peer) || (bare && s.peer.Bare().Equal(peer)) {
			gone = append(gone, s)
		}
	}
	m.mu.Unlock()
	for _, s := range gone {
		m.logger().Info("jingle: peer gone, session ended", "sid", s.sid, "peer", s.peer.String())
		s.end(&Reason{Condition: ReasonGone, Text: "the peer went offline"}, true)
	}
	return len(gone)
}

// Close terminates every live session with reason gone (best effort, bounded
// by ctx), refuses new ones, and waits for the goroutines it owns.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.init()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	live := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		live = append(live, s)
	}
	close(m.closing)
	m.mu.Unlock()
	for _, s := range live {
		_ = s.Terminate(ctx, Reason{Condition: ReasonGone})
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jingle: close: %w", ctx.Err())
	}
}

// NewSID returns a random session id: 128 bits, base32. A caller that
// must know a session's id before it starts (to tell its transports'
// events from others', say) picks one with it (InitiateOptions.SID).
func NewSID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
