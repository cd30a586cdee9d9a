// Package jmi implements XEP-0353 Jingle Message Initiation 0.8.0: call
// proposals sent as messages to a bare JID, so that every device of the
// callee rings before a Jingle session exists. A Manager sends and receives
// proposals (Outgoing, Incoming); the session that follows is an ordinary
// jingle.Session whose id is the proposal's.
package jmi

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/jingle"
)

// Namespaces of XEP-0353 and of the elements it travels with.
const (
	NS        = "urn:xmpp:jingle-message:0"
	NSHints   = "urn:xmpp:hints"     // XEP-0334's <store/>
	NSCarbons = "urn:xmpp:carbons:2" // XEP-0280's <sent/> and <received/>
	NSForward = "urn:xmpp:forward:0" // XEP-0297's <forwarded/>
)

// JMI actions: the local names of the elements in NS.
const (
	ActionPropose = "propose"
	ActionRinging = "ringing"
	ActionProceed = "proceed"
	ActionReject  = "reject"
	ActionRetract = "retract"
	ActionFinish  = "finish"
	// ActionAccept is the <accept/> of the older protocol (sent to one's own
	// bare JID when answering); it is read like a carbon of <proceed/>.
	ActionAccept = "accept"
)

// Message is one XEP-0353 element: <propose/>, <ringing/>, <proceed/>,
// <reject/>, <retract/> or <finish/> (the Action), with the session id
// and, depending on the action, descriptions, a reason, <tie-break/> or
// <migrated/>.
type Message struct {
	Action string `json:"action"`
	ID     string `json:"id"`
	// Descriptions are the <description/> elements of a propose, one per
	// medium.
	Descriptions []jingle.Element `json:"descriptions,omitempty"`
	Reason       *jingle.Reason   `json:"reason,omitempty"`
	TieBreak     bool             `json:"tie_break,omitempty"`
	// MigratedTo is the 'to' of a finish's <migrated/>: the session that
	// continues this one.
	MigratedTo string `json:"migrated_to,omitempty"`
	// Extra holds other children, as they came.
	Extra []jingle.Element `json:"extra,omitempty"`
	// ExtraAttrs holds attributes other than id.
	ExtraAttrs jingle.Attrs `json:"extra_attrs,omitempty"`

	ns string // the namespace it was read in
}

// UnmarshalXML implements xml.Unmarshaler.
func (m *Message) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if !jingle.ValidName(start.Name.Local) {
		// encoding/xml reads "<a:0/>"; it could not be written back.
		return fmt.Errorf("jmi: invalid element name %.64q", start.Name.Local)
	}
	*m = Message{Action: start.Name.Local, ns: start.Name.Space}
	for _, a := range cleanAttrs(start.Attr) {
		if a.Name.Space == "" && a.Name.Local == "id" {
			m.ID = a.Value
			continue
		}
		m.ExtraAttrs = append(m.ExtraAttrs, a)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			switch {
			case t.Name.Local == "description" && m.Action == ActionPropose:
				var x jingle.Element
				if err := d.DecodeElement(&x, &t); err != nil {
					return err
				}
				m.Descriptions = append(m.Descriptions, x)
			case t.Name.Space == jingle.NS && t.Name.Local == "reason" && m.Reason == nil:
				var r jingle.Reason
				if err := d.DecodeElement(&r, &t); err != nil {
					return err
				}
				m.Reason = &r
			case t.Name.Space == NS && t.Name.Local == "tie-break" && !m.TieBreak:
				if err := d.Skip(); err != nil {
					return err
				}
				m.TieBreak = true
			case t.Name.Space == NS && t.Name.Local == "migrated" && m.MigratedTo == "":
				var mg struct {
					To string `xml:"to,attr"`
				}
				if err := d.DecodeElement(&mg, &t); err != nil {
					return err
				}
				m.MigratedTo = mg.To
			default:
				var x jingle.Element
				if err := d.DecodeElement(&x, &t); err != nil {
					return err
				}
				m.Extra = append(m.Extra, x)
			}
		}
	}
}

// MarshalXML implements xml.Marshaler. The start argument is ignored.
func (m Message) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Space: NS, Local: m.Action}}
	if m.ID != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "id"}, Value: m.ID})
	}
	start.Attr = append(start.Attr, m.ExtraAttrs...)
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, d := range m.Descriptions {
		if err := e.Encode(d); err != nil {
			return err
		}
	}
	if m.Reason != nil {
		if err := e.Encode(m.Reason); err != nil {
			return err
		}
	}
	if m.TieBreak {
		tb := xml.StartElement{Name: xml.Name{Space: NS, Local: "tie-break"}}
		if err := e.EncodeToken(tb); err != nil {
			return err
		}
		if err := e.EncodeToken(tb.End()); err != nil {
			return err
		}
	}
	if m.MigratedTo != "" {
		mg := xml.StartElement{Name: xml.Name{Space: NS, Local: "migrated"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "to"}, Value: m.MigratedTo}}}
		if err := e.EncodeToken(mg); err != nil {
			return err
		}
		if err := e.EncodeToken(mg.End()); err != nil {
			return err
		}
	}
	for _, x := range m.Extra {
		if err := e.Encode(x); err != nil {
			return err
		}
	}
	if err := e.EncodeToken(start.End()); err != nil {
		return err
	}
	return e.Flush()
}

// MessageSender sends stanzas; *xmpp.Session implements it.
type MessageSender interface {
	LocalAddr() jid.JID
	Send(ctx context.Context, r xml.TokenReader) error
}

// Errors of JMI.
var (
	// ErrRejected is wrapped by Outgoing.Wait when the callee rejected
	// the proposal; errors.As finds the *jingle.Reason too.
	ErrRejected = errors.New("jmi: call rejected")
	// ErrRetracted ends an Incoming whose caller retracted it.
	ErrRetracted = errors.New("jmi: call retracted")
	// ErrAnsweredElsewhere ends an Incoming that another resource of this
	// account answered or rejected.
	ErrAnsweredElsewhere = errors.New("jmi: call answered on another device")
	// ErrClosed ends what is pending when the Manager closes, and refuses
	// new proposals after it.
	ErrClosed = errors.New("jmi: closed")
	// ErrTieBreakLost ends an Outgoing that crossed the peer's proposal and
	// lost the tie-break (XEP-0353 §4.1); the peer's proposal is delivered
	// instead.
	ErrTieBreakLost = errors.New("jmi: crossing call proposals; the peer's won")
)

// Limits bound what a JMI accepts. Zero means the default.
type Limits struct {
	// MaxIncoming is the number of pending incoming proposals (default 32);
	// more are ignored.
	MaxIncoming int
	// MaxDescriptions is the number of descriptions in a propose (default
	// 8); a propose with more is ignored.
	MaxDescriptions int
	// MaxBytes bounds a JMI element, counted as names, attribute values and
	// text (default 16 KiB); a larger one is ignored.
	MaxBytes int
	// Expire forgets a proposal that was neither answered nor retracted
	// after this long (default 2 minutes for incoming, see XEP-0353
	// business rules; outgoing ones are bounded by the caller's context).
	Expire time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxIncoming <= 0 {
		l.MaxIncoming = 32
	}
	if l.MaxDescriptions <= 0 {
		l.MaxDescriptions = 8
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 16 << 10
	}
	if l.Expire <= 0 {
		l.Expire = 2 * time.Minute
	}
	return l
}

// JMI runs XEP-0353 Jingle Message Initiation for one account: it sends
// proposals (Propose) and tracks their answers, and delivers the proposals
// it receives to OnPropose. Register Handler on the mux next to the
// Manager's, set the stream with SetStream, and Close it when done.
//
// Set the exported fields before first use.
type Manager struct {
	// OnPropose is called, in a goroutine the Manager owns, for each incoming
	// proposal (after tie-breaking). It answers with in.Proceed or
	// in.Reject, or lets the proposal ring until the caller retracts it or
	// another device answers (in.Done). Nil rejects nothing and answers
	// nothing: every proposal rings until it ends.
	OnPropose func(ctx context.Context, in *Incoming)
	// Limits bound what peers can make the JMI do.
	Limits Limits
	// Logger receives the logs; nil means slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	stream   MessageSender
	outgoing map[string]*Outgoing
	incoming map[string]*Incoming
	closed   bool
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func (j *Manager) init() {
	if j.outgoing == nil {
		j.outgoing = map[string]*Outgoing{}
		j.incoming = map[string]*Incoming{}
		j.ctx, j.cancel = context.WithCancel(context.Background())
	}
}

func (j *Manager) logger() *slog.Logger {
	if j.Logger != nil {
		return j.Logger
	}
	return slog.Default()
}

// SetStream sets the stream messages are sent on.
func (j *Manager) SetStream(s MessageSender) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.init()
	j.stream = s
}

func (j *Manager) getStream() (MessageSender, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stream == nil {
		return nil, errors.New("jmi: Manager has no stream (call SetStream)")
	}
	if j.closed {
		return nil, ErrClosed
	}
	return j.stream, nil
}

// go runs f in a goroutine the Manager owns; it reports false after Close.
func (j *Manager) goOwned(f func(ctx context.Context)) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.init()
	if j.closed {
		return false
	}
	j.wg.Add(1)
	ctx := j.ctx
	go func() {
		defer j.wg.Done()
		f(ctx)
	}()
	return true
}

// Close stops the JMI: pending proposals end, owned goroutines are
// cancelled and waited for (bounded by ctx).
func (j *Manager) Close(ctx context.Context) error {
	j.mu.Lock()
	j.init()
	j.closed = true
	j.cancel()
	ins := make([]*Incoming, 0, len(j.incoming))
	for _, in := range j.incoming {
		ins = append(ins, in)
	}
	outs := make([]*Outgoing, 0, len(j.outgoing))
	for _, o := range j.outgoing {
		outs = append(outs, o)
	}
	j.mu.Unlock()
	for _, in := range ins {
		in.end(ErrClosed)
	}
	for _, o := range outs {
		o.end(jid.JID{}, ErrClosed)
	}
	done := make(chan struct{})
	go func() { j.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jmi: closing: %w", ctx.Err())
	}
}

// send sends one JMI element in a chat message with a store hint.
func (j *Manager) send(ctx context.Context, to jid.JID, m Message) error {
	s, err := j.getStream()
	if err != nil {
		return err
	}
	el, err := jingle.NewElement(m)
	if err != nil {
		return err
	}
	store := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSHints, Local: "store"}})
	msg := stanza.Message{To: to, Type: stanza.ChatMessage}
	if err := s.Send(ctx, msg.Wrap(xmlstream.MultiReader(el.TokenReader(), store))); err != nil {
		return fmt.Errorf("jmi: sending %s to %s: %w", m.Action, to, err)
	}
	return nil
}

// NewID returns a random UUIDv4, the id XEP-0353 recommends.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Outgoing is a proposal this side sent.
type Outgoing struct {
	j     *Manager
	id    string
	to    jid.JID // bare
	descs []jingle.Element

	mu      sync.Mutex
	ringing []jid.JID
	ringCh  chan struct{}
	peer    jid.JID
	err     error
	done    chan struct{}
	over    bool
}

// ID returns the proposal's id, which is also the session id of the Jingle
// session that follows.
func (o *Outgoing) ID() string { return o.id }

// To returns the bare JID proposed to.
func (o *Outgoing) To() jid.JID { return o.to }

// Ringing is closed when a resource of the callee reported ringing.
func (o *Outgoing) Ringing() <-chan struct{} { return o.ringCh }

// Done is closed when the proposal was answered (proceed), rejected,
// retracted or lost a tie-break.
func (o *Outgoing) Done() <-chan struct{} { return o.done }

// Wait waits for the answer: the full JID of the resource that proceeded,
// to which the session-initiate goes, or an error: one wrapping
// ErrRejected (and the *jingle.Reason), ErrTieBreakLost, or ctx's. Wait does not
// retract on ctx's end: call Retract.
func (o *Outgoing) Wait(ctx context.Context) (jid.JID, error) {
	select {
	case <-o.done:
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.peer, o.err
	case <-ctx.Done():
		return jid.JID{}, ctx.Err()
	}
}

func (o *Outgoing) end(peer jid.JID, err error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.over {
		return false
	}
	o.over = true
	o.peer, o.err = peer, err
	close(o.done)
	return true
}

// Retract withdraws the proposal (reason cancel unless given) if it is
// still unanswered; after a proceed it does nothing and reports false.
func (o *Outgoing) Retract(ctx context.Context, r *jingle.Reason) (bool, error) {
	if !o.end(jid.JID{}, ErrRetracted) {
		return false, nil
	}
	o.j.forgetOutgoing(o)
	if r == nil {
		r = &jingle.Reason{Condition: jingle.ReasonCancel}
	}
	return true, o.j.send(ctx, o.to, Message{Action: ActionRetract, ID: o.id, Reason: r})
}

// Finish tells the peer that proceeded that the session ended (reason
// success unless given).
func (o *Outgoing) Finish(ctx context.Context, r *jingle.Reason) error {
	o.mu.Lock()
	peer := o.peer
	o.mu.Unlock()
	if peer.Equal(jid.JID{}) {
		return errors.New("jmi: finish: nobody proceeded")
	}
	if r == nil {
		r = &jingle.Reason{Condition: jingle.ReasonSuccess}
	}
	return o.j.send(ctx, peer, Message{Action: ActionFinish, ID: o.id, Reason: r})
}

// Propose sends a proposal to a bare JID (all of the callee's devices ring)
// with one description per medium (for RTP: <description media='audio'/>).
// The id is a new UUIDv4 unless id is not empty.
func (j *Manager) Propose(ctx context.Context, to jid.JID, id string, descs ...jingle.Element) (*Outgoing, error) {
	if len(descs) == 0 {
		return nil, errors.New("jmi: propose: no description")
	}
	if id == "" {
		id = NewID()
	}
	o := &Outgoing{j: j, id: id, to: to.Bare(), descs: slices.Clone(descs),
		ringCh: make(chan struct{}), done: make(chan struct{})}
	j.mu.Lock()
	j.init()
	if j.closed {
		j.mu.Unlock()
		return nil, ErrClosed
	}
	if _, dup := j.outgoing[id]; dup {
		j.mu.Unlock()
		return nil, fmt.Errorf("jmi: propose: id %q in use", id)
	}
	j.outgoing[id] = o
	j.mu.Unlock()
	if err := j.send(ctx, o.to, Message{Action: ActionPropose, ID: id, Descriptions: descs}); err != nil {
		j.forgetOutgoing(o)
		o.end(jid.JID{}, err)
		return nil, err
	}
	return o, nil
}

func (j *Manager) forgetOutgoing(o *Outgoing) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.outgoing[o.id] == o {
		delete(j.outgoing, o.id)
	}
}

// Incoming is a proposal this side received.
type Incoming struct {
	j *Manager
	// ID is the proposal's id: the sid of the session-initiate to expect.
	ID string
	// From is the caller's full JID.
	From jid.JID
	// Descriptions are the proposed media.
	Descriptions []jingle.Element
	// Migrates is the id of a session with the same caller that this one
	// continues (XEP-0353 §4.2); that session was finished with
	// <migrated/>.
	Migrates string

	mu        sync.Mutex
	proceeded bool
	err       error
	done      chan struct{}
	over      bool
	expire    *time.Timer
}

// Done is closed when the proposal is no longer pending: proceeded or
// rejected here, retracted, answered on another device, or expired.
func (in *Incoming) Done() <-chan struct{} { return in.done }

// Err returns why the proposal ended: nil when this side proceeded,
// ErrRejected when it rejected, ErrRetracted, ErrAnsweredElsewhere,
// context.DeadlineExceeded on expiry, ErrClosed.
func (in *Incoming) Err() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

// Proceeded reports whether this side proceeded.
func (in *Incoming) Proceeded() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.proceeded
}

func (in *Incoming) end(err error) bool {
	in.mu.Lock()
	if in.over {
		in.mu.Unlock()
		return false
	}
	in.over = true
	in.err = err
	in.proceeded = err == nil
	if in.expire != nil {
		in.expire.Stop()
	}
	close(in.done)
	in.mu.Unlock()
	if err != nil {
		in.j.forgetIncoming(in)
	}
	return true
}

// Ringing tells the caller this device is ringing.
func (in *Incoming) Ringing(ctx context.Context) error {
	select {
	case <-in.done:
		return in.doneErr()
	default:
	}
	return in.j.send(ctx, in.From, Message{Action: ActionRinging, ID: in.ID})
}

func (in *Incoming) doneErr() error {
	if err := in.Err(); err != nil {
		return err
	}
	return errors.New("jmi: proposal already answered")
}

// Proceed accepts the proposal on this device: the caller will send
// session-initiate with the proposal's id as sid.
func (in *Incoming) Proceed(ctx context.Context) error {
	if !in.end(nil) {
		return in.doneErr()
	}
	return in.j.send(ctx, in.From, Message{Action: ActionProceed, ID: in.ID})
}

// Reject declines the proposal (reason busy unless given).
func (in *Incoming) Reject(ctx context.Context, r *jingle.Reason) error {
	if !in.end(ErrRejected) {
		return in.doneErr()
	}
	if r == nil {
		r = &jingle.Reason{Condition: jingle.ReasonBusy}
	}
	return in.j.send(ctx, in.From, Message{Action: ActionReject, ID: in.ID, Reason: r})
}

// Finish tells the caller that the session that followed ended.
func (in *Incoming) Finish(ctx context.Context, r *jingle.Reason) error {
	if r == nil {
		r = &jingle.Reason{Condition: jingle.ReasonSuccess}
	}
	in.j.forgetIncoming(in)
	return in.j.send(ctx, in.From, Message{Action: ActionFinish, ID: in.ID, Reason: r})
}

func (j *Manager) forgetIncoming(in *Incoming) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.incoming[in.ID] == in {
		delete(j.incoming, in.ID)
	}
}

// Proceeded returns the incoming proposal with id sid from peer (full
// JID) that this side proceeded, or nil: the RTP application uses it to
// take the session-initiate that follows without asking again.
func (j *Manager) Proceeded(peer jid.JID, sid string) *Incoming {
	j.mu.Lock()
	in := j.incoming[sid]
	j.mu.Unlock()
	if in == nil || !in.From.Equal(peer) || !in.Proceeded() {
		return nil
	}
	return in
}

// Outgoing returns the outgoing proposal with id sid, or nil.
func (j *Manager) Outgoing(sid string) *Outgoing {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.outgoing[sid]
}

// Handler returns the mux option for JMI messages (type chat, and normal
// for lenient peers) and for XEP-0280 carbons of them.
func (j *Manager) Handler() mux.Option {
	return func(m *mux.ServeMux) {
		jmiNS := xml.Name{Space: NS}
		mux.Message(stanza.ChatMessage, jmiNS, j)(m)
		mux.Message(stanza.NormalMessage, jmiNS, j)(m)
		for _, local := range []string{"sent", "received"} {
			mux.Message(stanza.ChatMessage, xml.Name{Space: NSCarbons, Local: local}, j)(m)
		}
	}
}

// HandleMessage implements mux.MessageHandler. It never returns an error
// for bad input (that would end the stream) and never sends: the work is
// done in goroutines the Manager owns.
func (j *Manager) HandleMessage(msg stanza.Message, t xmlstream.TokenReadEncoder) error {
	lim := j.Limits.withDefaults()
	lr := &jingle.LimitReader{R: t, Max: lim.MaxBytes}
	d := xml.NewTokenDecoder(lr)
	// Read the message element by hand: its children are JMI elements or
	// a carbon.
	tok, err := d.Token()
	if err != nil {
		return nil
	}
	if _, ok := tok.(xml.StartElement); !ok {
		return nil
	}
	type item struct {
		m      Message
		from   jid.JID
		to     jid.JID
		carbon string // "", "sent" or "received"
	}
	var items []item
	for {
		tok, err := d.Token()
		if err != nil {
			j.logger().Debug("jmi: JMI message ignored", "from", msg.From, "err", err)
			return nil
		}
		st, ok := tok.(xml.StartElement)
		if !ok {
			if _, end := tok.(xml.EndElement); end {
				break
			}
			continue
		}
		switch {
		case st.Name.Space == NS:
			var m Message
			if err := d.DecodeElement(&m, &st); err != nil {
				j.logger().Debug("jmi: bad JMI element", "from", msg.From, "err", err)
				return nil
			}
			items = append(items, item{m: m, from: msg.From, to: msg.To})
		case st.Name.Space == NSCarbons && (st.Name.Local == "sent" || st.Name.Local == "received"):
			var fw carbonForward
			if err := d.DecodeElement(&fw, &st); err != nil {
				j.logger().Debug("jmi: bad carbon", "from", msg.From, "err", err)
				return nil
			}
			from, _ := jid.Parse(fw.Forwarded.Message.From)
			to, _ := jid.Parse(fw.Forwarded.Message.To)
			for _, m := range fw.Forwarded.Message.Any {
				if m.ns == NS {
					items = append(items, item{m: m, from: from, to: to, carbon: st.Name.Local})
				}
			}
		default:
			if err := d.Skip(); err != nil {
				return nil
			}
		}
	}
	for _, it := range items {
		if it.carbon != "" {
			// XEP-0280 §11: a carbon is only trusted from one's own bare
			// JID (mellium shows it as an empty from).
			if !j.fromSelf(msg.From) {
				j.logger().Debug("jmi: forged carbon ignored", "from", msg.From)
				continue
			}
			if it.carbon == "sent" {
				j.handleOwnAnswer(it.m, it.to)
			}
			// A received carbon is a copy of what a peer sent to another
			// of our resources: a proposal we also get directly (to the
			// bare JID), or an answer to another resource's call; ignored.
			continue
		}
		j.handle(it.m, it.from)
	}
	return nil
}

// carbonForward is a <sent/> or <received/> carbon.
type carbonForward struct {
	Forwarded struct {
		Message struct {
			From string    `xml:"from,attr"`
			To   string    `xml:"to,attr"`
			Any  []Message `xml:",any"`
		} `xml:"jabber:client message"`
	} `xml:"urn:xmpp:forward:0 forwarded"`
}

func (j *Manager) self() jid.JID {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stream == nil {
		return jid.JID{}
	}
	return j.stream.LocalAddr()
}

// fromSelf reports whether a stanza's from is this account's bare JID
// (or empty, which is how mellium shows it).
func (j *Manager) fromSelf(from jid.JID) bool {
	self := j.self()
	return from.Equal(jid.JID{}) || from.Equal(self.Bare())
}

// handleOwnAnswer handles a carbon of what another resource of this
// account sent: its proceed, reject (or old-style accept) ends the ringing
// here.
func (j *Manager) handleOwnAnswer(m Message, to jid.JID) {
	switch m.Action {
	case ActionProceed, ActionReject, ActionAccept:
	default:
		return
	}
	j.mu.Lock()
	in := j.incoming[m.ID]
	j.mu.Unlock()
	if in == nil || (!to.Equal(jid.JID{}) && !to.Bare().Equal(in.From.Bare())) {
		return
	}
	in.end(ErrAnsweredElsewhere)
}

// handle processes one JMI element sent by from.
func (j *Manager) handle(m Message, from jid.JID) {
	lim := j.Limits.withDefaults()
	self := j.self()
	if m.ID == "" || len(m.ID) > 256 {
		return
	}
	if from.Bare().Equal(self.Bare()) {
		// Another resource of ours, without carbons: its answer to a call
		// that rings here too (or the old <accept/> sent to our bare JID).
		if !from.Equal(self) {
			j.handleOwnAnswer(m, jid.JID{})
		}
		return
	}
	switch m.Action {
	case ActionPropose:
		if len(m.Descriptions) == 0 || len(m.Descriptions) > lim.MaxDescriptions {
			j.logger().Debug("jmi: propose ignored", "from", from, "descriptions", len(m.Descriptions))
			return
		}
		j.proposed(m, from, lim)
	case ActionRetract:
		j.mu.Lock()
		in := j.incoming[m.ID]
		j.mu.Unlock()
		if in == nil || !in.From.Equal(from) {
			j.logger().Debug("jmi: retract for an unknown proposal ignored", "from", from, "id", m.ID)
			return
		}
		in.end(ErrRetracted)
	case ActionRinging, ActionProceed, ActionReject:
		j.mu.Lock()
		o := j.outgoing[m.ID]
		j.mu.Unlock()
		if o == nil || !from.Bare().Equal(o.to) || from.Resourcepart() == "" {
			j.logger().Debug("jmi: answer to an unknown proposal ignored", "from", from, "id", m.ID, "action", m.Action)
			return
		}
		switch m.Action {
		case ActionRinging:
			o.mu.Lock()
			if !o.over {
				o.ringing = append(o.ringing, from)
				if len(o.ringing) == 1 {
					close(o.ringCh)
				}
			}
			o.mu.Unlock()
		case ActionProceed:
			o.end(from, nil)
		case ActionReject:
			r := m.Reason
			if r == nil {
				r = &jingle.Reason{Condition: jingle.ReasonBusy}
			}
			err := fmt.Errorf("%w by %s: %w", ErrRejected, from, r)
			if m.TieBreak {
				err = fmt.Errorf("%w: %w", ErrTieBreakLost, r)
			}
			if o.end(jid.JID{}, err) {
				j.forgetOutgoing(o)
			}
		}
	case ActionFinish:
		j.mu.Lock()
		in := j.incoming[m.ID]
		j.mu.Unlock()
		if in != nil && in.From.Equal(from) {
			j.forgetIncoming(in)
		}
	}
}

// proposed handles a propose: the tie-break with a crossing proposal of
// ours, the migration of a running call, then delivery.
func (j *Manager) proposed(m Message, from jid.JID, lim Limits) {
	self := j.self()
	j.mu.Lock()
	if _, dup := j.incoming[m.ID]; dup || len(j.incoming) >= lim.MaxIncoming {
		j.mu.Unlock()
		return
	}
	// XEP-0353 §4.1: our own unanswered proposal to the same person.
	var crossing *Outgoing
	for _, o := range j.outgoing {
		o.mu.Lock()
		pending := !o.over
		o.mu.Unlock()
		if pending && o.to.Equal(from.Bare()) {
			crossing = o
			break
		}
	}
	// §4.2: a call with the same person already proceeded here.
	var migrated *Incoming
	for _, in := range j.incoming {
		if in.From.Bare().Equal(from.Bare()) && in.Proceeded() {
			migrated = in
		}
	}
	in := &Incoming{j: j, ID: m.ID, From: from, Descriptions: m.Descriptions, done: make(chan struct{})}
	if crossing != nil {
		theirsWins := m.ID < crossing.id || (m.ID == crossing.id && from.String() < self.String())
		if !theirsWins {
			j.mu.Unlock()
			j.goOwned(func(ctx context.Context) {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_ = j.send(ctx, from, Message{Action: ActionReject, ID: m.ID, TieBreak: true,
					Reason: &jingle.Reason{Condition: jingle.ReasonExpired, Text: "Tie-Break"}})
			})
			return
		}
	}
	if migrated != nil {
		in.Migrates = migrated.ID
		delete(j.incoming, migrated.ID)
	}
	j.incoming[m.ID] = in
	in.mu.Lock()
	in.expire = time.AfterFunc(lim.Expire, func() { in.end(context.DeadlineExceeded) })
	in.mu.Unlock()
	j.mu.Unlock()
	if crossing != nil && crossing.end(jid.JID{}, ErrTieBreakLost) {
		j.forgetOutgoing(crossing)
		j.goOwned(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = j.send(ctx, crossing.to, Message{Action: ActionRetract, ID: crossing.id, TieBreak: true,
				Reason: &jingle.Reason{Condition: jingle.ReasonExpired, Text: "Tie-Break"}})
		})
	}
	if migrated != nil {
		old := migrated
		j.goOwned(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = j.send(ctx, old.From, Message{Action: ActionFinish, ID: old.ID, MigratedTo: m.ID,
				Reason: &jingle.Reason{Condition: jingle.ReasonExpired, Text: "Session migrated"}})
		})
	}
	if !j.goOwned(func(ctx context.Context) {
		if j.OnPropose != nil {
			j.OnPropose(ctx, in)
		}
	}) {
		in.end(ErrClosed)
	}
}

// cleanAttrs drops namespace declarations, which the names already carry.
func cleanAttrs(attrs []xml.Attr) []xml.Attr {
	out := make([]xml.Attr, 0, len(attrs))
	for _, a := range attrs {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		out = append(out, a)
	}
	return out
}
