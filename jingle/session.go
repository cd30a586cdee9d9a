package jingle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/iqhead"
)

// State is the state of a session (XEP-0166 §5.1).
type State int

// Session states.
const (
	StatePending State = iota + 1
	StateActive
	StateEnded
)

func (s State) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateActive:
		return "active"
	case StateEnded:
		return "ended"
	}
	return "unknown"
}

// ErrEnded is returned by the methods of a session that has ended.
var ErrEnded = errors.New("jingle: session ended")

// Event is an action of the peer that the session accepted, delivered to the
// application by NextEvent in the order the actions arrived.
type Event struct {
	Action Action
	// Jingle is the element as the peer sent it.
	Jingle *Jingle
	// Content names the first content the action concerns, if any.
	Content string
	// Reason is the action's reason, if it had one.
	Reason *Reason
}

type contentState int

const (
	contentActive     contentState = iota + 1 // part of the session
	contentPendingAdd                         // in a content-add not yet accepted
)

type content struct {
	wire      Content // description, senders… as last agreed; no transport
	state     contentState
	ns        string // transport method namespace
	t         Transport
	fallbacks []string     // methods to try next, in order
	replacing *replacement // this side's transport-replace awaiting an answer
	// peerReplacing is set while the peer's transport-replace is being
	// answered; this side's own replacement waits for it.
	peerReplacing bool
	gen           int // bumped when the transport changes
	sec           contentSecurity
}

type replacement struct {
	ns     string
	t      Transport
	result chan error    // buffered; nil on transport-accept
	sent   chan struct{} // closed once the peer answered the transport-replace IQ
}

// Session is one Jingle session with one peer. Its methods are safe for
// concurrent use; those that send wait for the peer's acknowledgement and
// must not be called from inside an XMPP stanza handler.
type Session struct {
	m         *Manager
	sid       string
	local     jid.JID
	peer      jid.JID
	initiator bool
	app       Application
	ctx       context.Context
	cancel    context.CancelFunc

	mu         sync.Mutex
	state      State
	initiating bool // session-initiate sent, not yet acknowledged
	contents   map[ContentKey]*content
	order      []ContentKey
	reason     *Reason
	changed    chan struct{} // closed and replaced on every change
	done       chan struct{}
	queue      []func()
	// started is set once the session holds its count on m.wg; running
	// while a goroutine drains queue. The goroutine exists only while
	// there is work: an idle session (a pending offer, a transfer whose
	// data flows elsewhere) costs no goroutine of its own.
	started, running bool
	finished         bool
	events           Queue[Event]
}

func newSession(m *Manager, local, peer jid.JID, sid string, initiator bool) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	return &Session{
		m: m, sid: sid, local: local, peer: peer, initiator: initiator,
		ctx: ctx, cancel: cancel,
		state:    StatePending,
		contents: map[ContentKey]*content{},
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// SID returns the session id.
func (s *Session) SID() string { return s.sid }

// Local returns this side's full JID.
func (s *Session) Local() jid.JID { return s.local }

// Peer returns the other party's full JID.
func (s *Session) Peer() jid.JID { return s.peer }

// IsInitiator reports whether this side initiated the session.
func (s *Session) IsInitiator() bool { return s.initiator }

// Role returns the creator value that names this side.
func (s *Session) Role() Creator {
	if s.initiator {
		return CreatorInitiator
	}
	return CreatorResponder
}

func (s *Session) peerRole() Creator {
	if s.initiator {
		return CreatorResponder
	}
	return CreatorInitiator
}

// State returns the session's state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Done is closed when the session ends.
func (s *Session) Done() <-chan struct{} { return s.done }

// Reason returns why the session ended (nil while it has not).
func (s *Session) Reason() *Reason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Contents returns the session's current contents (pending content-adds
// included), each with its current <transport/> element.
func (s *Session) Contents() []Content {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Content, 0, len(s.order))
	for _, k := range s.order {
		c := s.contents[k]
		w := c.wire
		if c.t != nil {
			el := c.t.Local()
			w.Transport = &el
		}
		out = append(out, w)
	}
	return out
}

// TransportNamespace returns the method of the named content's current
// transport.
func (s *Session) TransportNamespace(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.byName(name)
	if err != nil {
		return "", err
	}
	return c.ns, nil
}

// Transport returns the named content's current transport.
func (s *Session) Transport(name string) (Transport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.byName(name)
	if err != nil {
		return nil, err
	}
	return c.t, nil
}

// byName finds a content by name; s.mu is held.
func (s *Session) byName(name string) (*content, error) {
	var found *content
	for _, k := range s.order {
		if k.Name == name {
			if found != nil {
				return nil, fmt.Errorf("jingle: content name %q is used by both parties", name)
			}
			found = s.contents[k]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("jingle: no content %q in session %s", name, s.sid)
	}
	return found, nil
}

// NextEvent returns the peer's next accepted action. After the session has
// ended and every event was taken, it returns ErrEnded.
func (s *Session) NextEvent(ctx context.Context) (Event, error) {
	return s.events.Next(ctx)
}

// EventReady returns a channel that is closed when NextEvent would not
// block: an event is waiting or the session has ended and every event was
// taken. An application that waits for the session among other channels
// selects on it, then takes the event with TryNextEvent; the channel may
// also close on another change, so take a new one after each wake-up.
func (s *Session) EventReady() <-chan struct{} {
	return s.events.Ready()
}

// TryNextEvent returns the peer's next accepted action without waiting:
// ok is false when none is waiting. After the session has ended and every
// event was taken, it returns ErrEnded.
func (s *Session) TryNextEvent() (ev Event, ok bool, err error) {
	return s.events.TryNext()
}

// broadcast wakes everyone waiting on a change; s.mu is held.
func (s *Session) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// pushEvent queues an event for the application; s.mu is held.
func (s *Session) pushEvent(ev Event) {
	s.events.Push(ev)
	s.broadcast()
}

// start makes the session run its queued work: from now on a goroutine
// drains the queue whenever it has work (see kick).
func (s *Session) start() {
	s.m.mu.Lock()
	closed := s.m.closed
	if !closed {
		s.m.wg.Add(1)
	}
	s.m.mu.Unlock()
	if closed {
		s.end(&Reason{Condition: ReasonGone}, false)
		return
	}
	s.mu.Lock()
	s.started = true
	s.kick()
	s.mu.Unlock()
}

// kick starts the goroutine that drains the queue, unless it runs or
// there is nothing to do; s.mu is held.
func (s *Session) kick() {
	if s.started && !s.running && len(s.queue) > 0 {
		s.running = true
		go s.run()
	}
}

// run executes the session's queued work in order until the queue is
// empty. The goroutine that finds it empty after the clean-up ran (the
// session finished) releases the session's count on m.wg.
func (s *Session) run() {
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		if len(q) == 0 {
			s.running = false
			fin := s.finished
			s.mu.Unlock()
			if fin {
				s.m.wg.Done()
			}
			return
		}
		s.mu.Unlock()
		for _, f := range q {
			f()
		}
	}
}

// enqueue adds work for the session's goroutine; s.mu is held. It reports
// false when the queue is full or the session has finished.
func (s *Session) enqueue(f func()) bool {
	if s.finished || len(s.queue) >= s.m.limits().MaxPending {
		return false
	}
	s.queue = append(s.queue, f)
	s.kick()
	return true
}

// end moves the session to ENDED (once), records the reason and queues the
// clean-up: transports closed, the application's context cancelled. When
// event is true the peer's session-terminate is delivered as an Event.
func (s *Session) end(r *Reason, event bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(r, event, nil, nil)
}

// endLocked ends the session; s.mu is held. When hold is not nil, the
// transports are closed only once it is closed: Terminate holds them open
// until the peer has acknowledged the reason, so that the peer learns why
// before its stream breaks.
func (s *Session) endLocked(r *Reason, event bool, j *Jingle, hold <-chan struct{}) {
	if s.state == StateEnded {
		return
	}
	s.state = StateEnded
	if r == nil {
		r = &Reason{Condition: ReasonSuccess}
	}
	s.reason = r
	if event {
		s.events.Push(Event{Action: ActionSessionTerminate, Jingle: j, Reason: r})
	}
	var ts []Transport
	for _, c := range s.contents {
		if c.t != nil {
			ts = append(ts, c.t)
		}
		if c.replacing != nil {
			ts = append(ts, c.replacing.t)
			c.replacing.result <- ErrEnded
			c.replacing = nil
		}
	}
	close(s.done)
	s.m.remove(s)
	cleanup := func() {
		if hold != nil {
			<-hold
		}
		for _, t := range ts {
			if err := t.Close(); err != nil {
				s.m.logger().Debug("jingle: closing transport", "sid", s.sid, "err", err)
			}
		}
		s.cancel()
		s.mu.Lock()
		s.finished = true
		s.events.Close()
		s.broadcast()
		s.mu.Unlock()
	}
	// The clean-up must run even when the queue is full.
	s.queue = append(s.queue, cleanup)
	s.kick()
	s.broadcast()
}

// newLocalContent creates a content this side offers, with its transport.
func (s *Session) newLocalContent(ctx context.Context, creator Creator, o Offer, st contentState) (Content, error) {
	methods := o.Transports
	if len(methods) == 0 {
		methods = s.m.transportsFor(&o.Description)
	}
	if len(methods) == 0 {
		return Content{}, errors.New("jingle: no transport method registered")
	}
	tm, ok := s.m.transport(&o.Description, methods[0])
	if !ok {
		return Content{}, fmt.Errorf("jingle: transport method %q not registered", methods[0])
	}
	key := ContentKey{Creator: creator, Name: o.Name}
	desc0 := o.Description
	p := s.transportParams(key, nil)
	p.Description = &desc0
	t, err := s.newTransport(ctx, tm, p)
	if err != nil {
		return Content{}, fmt.Errorf("jingle: %s transport for %q: %w", methods[0], o.Name, err)
	}
	desc := o.Description
	w := Content{Creator: creator, Name: o.Name, Senders: o.Senders, Disposition: o.Disposition, Description: &desc, Security: o.Security}
	s.mu.Lock()
	if _, dup := s.contents[key]; dup {
		s.mu.Unlock()
		_ = t.Close()
		return Content{}, fmt.Errorf("jingle: content %q exists", o.Name)
	}
	s.contents[key] = &content{wire: w, state: st, ns: methods[0], t: t, fallbacks: slices.Clone(methods[1:]),
		sec: contentSecurity{layer: o.Layer, opened: o.Layer != nil}}
	s.order = append(s.order, key)
	s.mu.Unlock()
	el := t.Local()
	w.Transport = &el
	return w, nil
}

func (s *Session) transportParams(key ContentKey, offer *Element) TransportParams {
	stream, _ := s.m.getStream()
	return TransportParams{
		SID: s.sid, Content: key, Local: s.local, Peer: s.peer, Initiator: s.initiator,
		Offer: offer, Stream: stream, Signal: signaler{s, key},
	}
}

type signaler struct {
	s   *Session
	key ContentKey
}

func (g signaler) TransportInfo(ctx context.Context, t Element) error {
	if g.s.State() == StateEnded {
		return ErrEnded
	}
	return g.s.send(ctx, &Jingle{Action: ActionTransportInfo, SID: g.s.sid,
		Contents: []Content{{Creator: g.key.Creator, Name: g.key.Name, Transport: &t}}})
}

// TransportInfoFunc implements AsyncSignaler.
func (g signaler) TransportInfoFunc(ctx context.Context, t Element, answered func(error)) error {
	if g.s.State() == StateEnded {
		return ErrEnded
	}
	return g.s.sendFunc(ctx, &Jingle{Action: ActionTransportInfo, SID: g.s.sid,
		Contents: []Content{{Creator: g.key.Creator, Name: g.key.Name, Transport: &t}}}, answered)
}

// sendFunc sends one action and hands the peer's acknowledgement (nil or
// an *Error) or the failure of the wait to done, once. Through an
// AsyncIQSender it returns once the IQ is written and done runs later on
// the stream's goroutine or a timer's; through another stream it waits
// for the answer, in the caller, as send does. ctx's deadline, if any,
// bounds the wait; else the IQ timeout. A session that ends stops the
// wait only where the wait is the caller's.
func (s *Session) sendFunc(ctx context.Context, j *Jingle, done func(error)) error {
	stream, err := s.m.getStream()
	if err != nil {
		return err
	}
	as, ok := stream.(AsyncIQSender)
	if !ok {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
		done(s.send(wctx, j))
		return nil
	}
	wait := s.m.limits().IQTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	el, err := NewElement(j)
	if err != nil {
		return err
	}
	iq := stanza.IQ{ID: randomID(), To: s.peer, Type: stanza.SetIQ}
	err = as.SendIQFunc(ctx, el.TokenReader(), iq, wait, func(r xml.TokenReader, err error) {
		if err != nil {
			done(fmt.Errorf("jingle: %s: %w", j.Action, err))
			return
		}
		done(readIQResult(r, s.peer))
	})
	if err != nil {
		return fmt.Errorf("jingle: %s: %w", j.Action, err)
	}
	return nil
}

// send sends one action and waits for the peer's acknowledgement. An error
// answer is returned as an *Error.
func (s *Session) send(ctx context.Context, j *Jingle, wrap ...func(xml.TokenReader) xml.TokenReader) error {
	stream, err := s.m.getStream()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.m.limits().IQTimeout)
		defer cancel()
	}
	el, err := NewElement(j)
	if err != nil {
		return err
	}
	var payload xml.TokenReader = el.TokenReader()
	for _, w := range wrap {
		payload = w(payload)
	}
	resp, err := stream.SendIQElement(ctx, payload, stanza.IQ{To: s.peer, Type: stanza.SetIQ})
	if err != nil {
		return fmt.Errorf("jingle: %s: %w", j.Action, err)
	}
	defer resp.Close()
	return readIQResult(resp, s.peer)
}

// readIQResult returns nil for an IQ result and an *Error for an IQ error.
// mellium matches answers by id alone, so the sender is checked here: an
// answer from anyone but peer is an error.
func readIQResult(r xml.TokenReader, peer jid.JID) error {
	d := xml.NewTokenDecoder(r)
	h, err := iqhead.ReadAnswer(d, peer)
	if err != nil {
		return fmt.Errorf("jingle: %w", err)
	}
	if h.Type != "error" {
		return nil
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("jingle: reading error answer: %w", err)
		}
		if st, ok := tok.(xml.StartElement); ok && st.Name.Local == "error" {
			e := &Error{}
			if err := d.DecodeElement(e, &st); err != nil {
				return fmt.Errorf("jingle: reading error answer: %w", err)
			}
			return e
		}
	}
	return &Error{Type: stanza.Cancel, Condition: stanza.UndefinedCondition, Text: "error answer without <error/>"}
}

// checkLive returns ErrEnded for an ended session; s.mu is held.
func (s *Session) checkLive() error {
	if s.state == StateEnded {
		return ErrEnded
	}
	return nil
}

// Accept sends session-accept (responder only). Each content is answered
// with its description from descs (by content name) or, when absent, the
// description as offered, and with this side's transport.
func (s *Session) Accept(ctx context.Context, descs map[string]Element) error {
	return s.AcceptWith(ctx, descs, nil)
}

// AcceptWith is Accept with session-level children (such as XEP-0338's
// <group/>) in the session-accept.
func (s *Session) AcceptWith(ctx context.Context, descs map[string]Element, info []Element) error {
	s.mu.Lock()
	if err := s.checkLive(); err != nil {
		s.mu.Unlock()
		return err
	}
	if s.initiator || s.state != StatePending {
		s.mu.Unlock()
		return fmt.Errorf("jingle: accept: session is %s and this side is the %s", s.state, s.Role())
	}
	j := &Jingle{Action: ActionSessionAccept, Responder: s.local.String(), SID: s.sid, Info: info}
	for _, k := range s.order {
		c := s.contents[k]
		if c.state != contentActive || c.t == nil {
			continue
		}
		w := c.wire
		if d, ok := descs[k.Name]; ok {
			w.Description = &d
			c.wire.Description = &d
		}
		el := c.t.Local()
		w.Transport = &el
		j.Contents = append(j.Contents, w)
	}
	// XEP-0166 §7.2.8: the responder is active from the moment it accepts.
	s.state = StateActive
	s.broadcast()
	s.mu.Unlock()
	if err := s.send(ctx, j); err != nil {
		s.end(&Reason{Condition: ReasonGeneralError, Text: err.Error()}, false)
		return err
	}
	return nil
}

// Terminate ends the session with a reason and tells the peer. The session
// is ENDED as soon as Terminate is called, before the peer acknowledges
// (XEP-0166 §6.7). Terminating an ended session does nothing.
func (s *Session) Terminate(ctx context.Context, r Reason) error {
	s.mu.Lock()
	if s.state == StateEnded {
		s.mu.Unlock()
		return nil
	}
	sent := make(chan struct{})
	defer close(sent)
	s.endLocked(&r, false, nil, sent)
	s.mu.Unlock()
	err := s.send(ctx, &Jingle{Action: ActionSessionTerminate, SID: s.sid, Reason: &r})
	if err != nil && errors.Is(err, ErrUnknownSession) {
		return nil // the peer had ended it already
	}
	return err
}

// Info sends session-info with the given payloads; none makes it a ping.
func (s *Session) Info(ctx context.Context, payloads ...Element) error {
	if err := s.live(); err != nil {
		return err
	}
	return s.send(ctx, &Jingle{Action: ActionSessionInfo, SID: s.sid, Info: payloads})
}

// InfoNoWait sends session-info with the payloads like Info, but returns
// once the IQ has been written, without waiting for the peer's answer: for
// informational payloads that nothing may wait on (XEP-0234's
// <received/>, which StanzaJS 12.22.1 never answers). An action sent
// after InfoNoWait returns goes out after it on the stream. ctx bounds the
// write. The answer is ignored: on a stream that is an ElementSender
// (*xmpp.Session) the IQ is sent untracked and its answer dropped by the
// stream; on another, a goroutine waits for it, for at most the Manager's
// IQ timeout.
func (s *Session) InfoNoWait(ctx context.Context, payloads ...Element) error {
	if err := s.live(); err != nil {
		return err
	}
	stream, err := s.m.getStream()
	if err != nil {
		return err
	}
	j := &Jingle{Action: ActionSessionInfo, SID: s.sid, Info: payloads}
	el, err := NewElement(j)
	if err != nil {
		return err
	}
	if es, ok := stream.(ElementSender); ok {
		iq := stanza.IQ{ID: randomID(), To: s.peer, Type: stanza.SetIQ}
		if err := es.SendElement(ctx, el.TokenReader(), iq.StartElement()); err != nil {
			return fmt.Errorf("jingle: %s: %w", j.Action, err)
		}
		return nil
	}
	return s.sendUntilWritten(ctx, j)
}

// ElementSender is implemented by an IQSender that can send a stanza
// without tracking an answer to it (*xmpp.Session does). The call returns
// once the stanza has been written.
type ElementSender interface {
	SendElement(ctx context.Context, r xml.TokenReader, start xml.StartElement) error
}

// randomID returns a fresh stanza id.
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sendUntilWritten sends j in a goroutine that waits for the answer for at
// most the IQ timeout (its write must not be cut by ctx), and returns once
// the stream has read the IQ's payload to its end: it then holds its write
// lock until the IQ is written, so later sends follow it.
func (s *Session) sendUntilWritten(ctx context.Context, j *Jingle) error {
	consumed := make(chan struct{})
	answer := make(chan error, 1)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.m.limits().IQTimeout)
	go func() {
		defer cancel()
		answer <- s.send(wctx, j, func(r xml.TokenReader) xml.TokenReader {
			return &eofSignal{r: r, done: consumed}
		})
	}()
	select {
	case <-consumed:
		return nil
	case err := <-answer:
		return err
	case <-ctx.Done():
		return fmt.Errorf("jingle: %s: %w", j.Action, context.Cause(ctx))
	}
}

// eofSignal closes done when r has returned its last token.
type eofSignal struct {
	r    xml.TokenReader
	done chan struct{}
	once sync.Once
}

func (e *eofSignal) Token() (xml.Token, error) {
	t, err := e.r.Token()
	if err != nil {
		e.once.Do(func() { close(e.done) })
	}
	return t, err
}

func (s *Session) live() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkLive()
}

// contentAction sends an action about one existing content.
func (s *Session) contentAction(ctx context.Context, a Action, name string, edit func(c *Content), r *Reason) error {
	s.mu.Lock()
	if err := s.checkLive(); err != nil {
		s.mu.Unlock()
		return err
	}
	c, err := s.byName(name)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	w := Content{Creator: c.wire.Creator, Name: c.wire.Name}
	if edit != nil {
		edit(&w)
	}
	s.mu.Unlock()
	return s.send(ctx, &Jingle{Action: a, SID: s.sid, Contents: []Content{w}, Reason: r})
}

// DescriptionInfo sends description-info for a content.
func (s *Session) DescriptionInfo(ctx context.Context, name string, desc Element) error {
	return s.contentAction(ctx, ActionDescriptionInfo, name, func(c *Content) { c.Description = &desc }, nil)
}

// SecurityInfo sends security-info for a content.
func (s *Session) SecurityInfo(ctx context.Context, name string, sec Element) error {
	return s.contentAction(ctx, ActionSecurityInfo, name, func(c *Content) { c.Security = &sec }, nil)
}

// ModifyContent changes who sends data for a content (content-modify).
func (s *Session) ModifyContent(ctx context.Context, name string, senders Senders) error {
	if senders == "" || !senders.Valid() {
		return fmt.Errorf("jingle: content-modify: bad senders %q", senders)
	}
	if err := s.contentAction(ctx, ActionContentModify, name, func(c *Content) { c.Senders = senders }, nil); err != nil {
		return err
	}
	s.mu.Lock()
	if c, err := s.byName(name); err == nil {
		c.wire.Senders = senders
	}
	s.mu.Unlock()
	return nil
}

// AddContent proposes a new content (content-add). It is pending until the
// peer answers with content-accept or content-reject (delivered as Events).
func (s *Session) AddContent(ctx context.Context, o Offer) error {
	if err := s.live(); err != nil {
		return err
	}
	if app, ok := s.m.application(o.Description.Namespace()); !ok {
		return fmt.Errorf("jingle: content-add: no application for %q", o.Description.Namespace())
	} else if s.app == nil {
		s.app = app
	}
	w, err := s.newLocalContent(ctx, s.Role(), o, contentPendingAdd)
	if err != nil {
		return err
	}
	if err := s.send(ctx, &Jingle{Action: ActionContentAdd, SID: s.sid, Contents: []Content{w}}); err != nil {
		s.dropContent(w.Key())
		return err
	}
	return nil
}

// dropContent removes a content and closes its transport.
func (s *Session) dropContent(k ContentKey) {
	s.mu.Lock()
	c := s.contents[k]
	delete(s.contents, k)
	s.order = slices.DeleteFunc(s.order, func(o ContentKey) bool { return o == k })
	s.mu.Unlock()
	if c != nil && c.t != nil {
		_ = c.t.Close()
	}
	if c != nil && c.replacing != nil {
		_ = c.replacing.t.Close()
	}
}

// AcceptContent accepts a content the peer added (content-accept), answering
// with desc or, when nil, the description as offered.
func (s *Session) AcceptContent(ctx context.Context, name string, desc *Element) error {
	s.mu.Lock()
	if err := s.checkLive(); err != nil {
		s.mu.Unlock()
		return err
	}
	c, err := s.byName(name)
	if err != nil || c.state != contentPendingAdd || c.wire.Creator == s.Role() || c.t == nil {
		s.mu.Unlock()
		if err == nil {
			err = fmt.Errorf("jingle: content-accept: %q is not a pending content-add of the peer's", name)
		}
		return err
	}
	c.state = contentActive
	if desc != nil {
		c.wire.Description = desc
	}
	w := c.wire
	el := c.t.Local()
	w.Transport = &el
	s.broadcast()
	s.mu.Unlock()
	return s.send(ctx, &Jingle{Action: ActionContentAccept, SID: s.sid, Contents: []Content{w}})
}

// RejectContent refuses a content the peer added (content-reject).
func (s *Session) RejectContent(ctx context.Context, name string, r *Reason) error {
	s.mu.Lock()
	c, err := s.byName(name)
	if err == nil && (c.state != contentPendingAdd || c.wire.Creator == s.Role()) {
		err = fmt.Errorf("jingle: content-reject: %q is not a pending content-add of the peer's", name)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	k := c.wire.Key()
	err = s.send(ctx, &Jingle{Action: ActionContentReject, SID: s.sid,
		Contents: []Content{{Creator: k.Creator, Name: k.Name}}, Reason: r})
	s.dropContent(k)
	return err
}

// RemoveContent removes a content (content-remove). Removing the last
// content terminates the session instead, as XEP-0166 §7.2.5 suggests.
func (s *Session) RemoveContent(ctx context.Context, name string, r *Reason) error {
	s.mu.Lock()
	c, err := s.byName(name)
	last := len(s.order) == 1
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if last {
		reason := Reason{Condition: ReasonSuccess}
		if r != nil {
			reason = *r
		}
		return s.Terminate(ctx, reason)
	}
	k := c.wire.Key()
	err = s.send(ctx, &Jingle{Action: ActionContentRemove, SID: s.sid,
		Contents: []Content{{Creator: k.Creator, Name: k.Name}}, Reason: r})
	s.dropContent(k)
	return err
}

// ReplaceTransport proposes another transport method for a content
// (transport-replace) and waits for the peer's transport-accept (nil) or
// transport-reject (an error).
func (s *Session) ReplaceTransport(ctx context.Context, name, method string) error {
	s.mu.Lock()
	if err := s.checkLive(); err != nil {
		s.mu.Unlock()
		return err
	}
	c, err := s.byName(name)
	if err == nil && c.replacing != nil {
		err = fmt.Errorf("jingle: transport-replace of %q already under way", name)
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	key := c.wire.Key()
	p := s.transportParams(key, nil)
	p.Description = c.wire.Description
	s.mu.Unlock()
	tm, ok := s.m.transport(p.Description, method)
	if !ok {
		return fmt.Errorf("jingle: transport-replace: method %q not registered", method)
	}
	if err := s.waitPeerReplace(ctx, c); err != nil {
		return err
	}

	t, err := s.newTransport(ctx, tm, p)
	if err != nil {
		return fmt.Errorf("jingle: transport-replace: %w", err)
	}
	rep := &replacement{ns: method, t: t, result: make(chan error, 1), sent: make(chan struct{})}
	s.mu.Lock()
	if err := s.checkLive(); err != nil || s.contents[key] != c || c.replacing != nil {
		s.mu.Unlock()
		_ = t.Close()
		if err == nil {
			err = fmt.Errorf("jingle: transport-replace of %q: content changed meanwhile", name)
		}
		return err
	}
	if c.peerReplacing {
		s.mu.Unlock()
		_ = t.Close()
		return s.ReplaceTransport(ctx, name, method)
	}
	c.replacing = rep
	s.mu.Unlock()

	el := t.Local()
	err = s.send(ctx, &Jingle{Action: ActionTransportReplace, SID: s.sid,
		Contents: []Content{{Creator: key.Creator, Name: key.Name, Transport: &el}}})
	close(rep.sent)
	if err != nil {
		s.mu.Lock()
		if c.replacing == rep {
			c.replacing = nil
		}
		s.mu.Unlock()
		_ = t.Close()
		return err
	}
	select {
	case err := <-rep.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Conn returns the byte stream of a content whose transport is a stream
// transport, waiting until it is connected. When Dial's error is a
// ReasonError (a security failure, say), the session is terminated with
// its reason. When the transport fails, the
// initiator replaces it with the next method of the content's offer
// (transport-replace) and tries again; the responder waits for the
// initiator's replacement. When no method is left, the session is
// terminated with failed-transport.
//
// A content with a security layer (a <security/> element, or
// Offer.Layer) has its stream only through SecureConn: Conn returns
// ErrSecured for it, so that no application reads or writes the stream
// unprotected by mistake.
func (s *Session) Conn(ctx context.Context, name string) (net.Conn, error) {
	s.mu.Lock()
	c, err := s.byName(name)
	secured := err == nil && (c.wire.Security != nil || c.sec.layer != nil)
	s.mu.Unlock()
	if secured {
		return nil, fmt.Errorf("jingle: content %q: %w", name, ErrSecured)
	}
	return s.conn(ctx, name)
}

// conn is Conn without the security check.
func (s *Session) conn(ctx context.Context, name string) (net.Conn, error) {
	for {
		s.mu.Lock()
		if err := s.checkLive(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		c, err := s.byName(name)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		t, gen, ns, key := c.t, c.gen, c.ns, c.wire.Key()
		s.mu.Unlock()
		st, ok := t.(StreamTransport)
		if !ok {
			return nil, fmt.Errorf("jingle: content %q: transport %s is not a stream transport", name, ns)
		}
		conn, err := st.Dial(ctx)
		if err == nil {
			s.observe(TransportConnected, key, ns, func(e *TransportEvent) { e.Transport = t })
			return s.observeConn(conn, key, ns), nil
		}
		if ctx.Err() == nil {
			s.observe(TransportFailed, key, ns, func(e *TransportEvent) { e.Err = err })
		}
		var rr ReasonError
		if errors.As(err, &rr) {
			// The transport says how the session must end (a DTLS
			// fingerprint mismatch is a security-error): no fallback.
			_ = s.Terminate(context.WithoutCancel(ctx), rr.JingleReason())
			return nil, err
		}
		if !errors.Is(err, ErrTransportFailed) || ctx.Err() != nil {
			return nil, err
		}
		s.m.logger().Info("jingle: transport failed", "sid", s.sid, "content", name, "transport", ns, "err", err)
		if s.initiator {
			if err := s.fallBack(ctx, name, c); err != nil {
				return nil, err
			}
			continue
		}
		if err := s.waitTransportChange(ctx, c, gen); err != nil {
			return nil, err
		}
	}
}

// fallBack replaces a failed transport with the next method in line.
func (s *Session) fallBack(ctx context.Context, name string, c *content) error {
	for {
		s.mu.Lock()
		if len(c.fallbacks) == 0 {
			s.mu.Unlock()
			r := Reason{Condition: ReasonFailedTransport, Text: "no transport method left"}
			_ = s.Terminate(ctx, r)
			return fmt.Errorf("jingle: content %q: %w: no method left", name, ErrTransportFailed)
		}
		next := c.fallbacks[0]
		c.fallbacks = c.fallbacks[1:]
		gen := c.gen
		s.mu.Unlock()
		err := s.ReplaceTransport(ctx, name, next)
		if err == nil {
			return nil
		}
		s.mu.Lock()
		changed := c.gen != gen // the peer's own replacement won a tie-break
		s.mu.Unlock()
		if changed {
			return nil
		}
		s.m.logger().Info("jingle: transport-replace refused", "sid", s.sid, "content", name, "transport", next, "err", err)
		if ctx.Err() != nil || errors.Is(err, ErrEnded) {
			return err
		}
	}
}

// waitTransportChange waits until the content's transport is replaced, for
// Limits.TransportWait at most: then the session ends with failed-transport.
func (s *Session) waitTransportChange(ctx context.Context, c *content, gen int) error {
	wait := s.m.limits().TransportWait
	tm := time.NewTimer(wait)
	defer tm.Stop()
	for {
		s.mu.Lock()
		if err := s.checkLive(); err != nil {
			s.mu.Unlock()
			return err
		}
		if c.gen != gen {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-tm.C:
			r := Reason{Condition: ReasonFailedTransport, Text: fmt.Sprintf("no transport-replace within %s", wait)}
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.m.limits().IQTimeout)
			_ = s.Terminate(tctx, r)
			cancel()
			return fmt.Errorf("jingle: content %q: %w: %s", c.wire.Name, ErrTransportFailed, r.Text)
		}
	}
}

// waitPeerReplace waits while the peer's transport-replace of c is being
// answered.
func (s *Session) waitPeerReplace(ctx context.Context, c *content) error {
	for {
		s.mu.Lock()
		if err := s.checkLive(); err != nil {
			s.mu.Unlock()
			return err
		}
		if !c.peerReplacing {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
