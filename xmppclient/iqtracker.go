package xmppclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/jinglekit/jinglekit/internal/iqhead"
)

// ErrNoAnswer is wrapped by the error an IQTracker hands to an answer
// function when the wait for the answer passed. It also matches
// context.DeadlineExceeded.
var ErrNoAnswer = fmt.Errorf("xmppclient: no answer to the IQ in time: %w", context.DeadlineExceeded)

// ErrStreamEnded is wrapped by the error an IQTracker hands to the answer
// functions of the IQs still in flight when it is closed: the stream
// ended, no answer can come.
var ErrStreamEnded = errors.New("xmppclient: the stream ended before the answer")

// IQTracker sends IQs on one session and hands each answer to a function
// when it arrives, with no goroutine waiting for it: mellium's SendIQ
// keeps its caller blocked until the answer, a goroutine for every IQ in
// flight. The tracker keeps the IQs in flight in a map; its Handler, put
// in front of the session's handler, takes their answers out of the
// stream, and a timer per IQ bounds the wait.
//
// It implements jingle.AsyncIQSender (and jingle.IQSender and
// jingle.ElementSender), so a jingle.Manager given one sends its
// informational actions without a goroutine per IQ. A Client has one
// (Client.SendIQFunc). The zero value is ready once SetSession is called;
// Close fails the IQs still in flight.
type IQTracker struct {
	mu      sync.Mutex
	session *xmpp.Session
	pending map[string]*pendingIQ
	closed  error
}

type pendingIQ struct {
	to     jid.JID
	answer func(xml.TokenReader, error)
	timer  *time.Timer
}

// SetSession sets the session the tracker sends on. Serve that session
// with the tracker's Handler.
func (t *IQTracker) SetSession(s *xmpp.Session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.session = s
}

func (t *IQTracker) getSession() (*xmpp.Session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sessionLocked()
}

// sessionLocked returns the session to send on, or why there is none;
// t.mu is held.
func (t *IQTracker) sessionLocked() (*xmpp.Session, error) {
	if t.closed != nil {
		return nil, t.closed
	}
	if t.session == nil {
		return nil, errors.New("xmppclient: IQTracker has no session (SetSession)")
	}
	return t.session, nil
}

// LocalAddr returns the session's address (jingle.IQSender).
func (t *IQTracker) LocalAddr() jid.JID {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.session == nil {
		return jid.JID{}
	}
	return t.session.LocalAddr()
}

// SendIQElement sends an IQ and waits for its answer (jingle.IQSender):
// the session's SendIQElement.
func (t *IQTracker) SendIQElement(ctx context.Context, payload xml.TokenReader, iq stanza.IQ) (xmlstream.TokenReadCloser, error) {
	s, err := t.getSession()
	if err != nil {
		return nil, err
	}
	return s.SendIQElement(ctx, payload, iq)
}

// SendElement sends a stanza without tracking an answer
// (jingle.ElementSender): the session's SendElement.
func (t *IQTracker) SendElement(ctx context.Context, r xml.TokenReader, start xml.StartElement) error {
	s, err := t.getSession()
	if err != nil {
		return err
	}
	return s.SendElement(ctx, r, start)
}

// SendIQFunc sends an IQ get or set wrapping payload and returns once it
// is written; ctx bounds the write. Unless it returns an error, answer is
// then called exactly once: with the answer — the whole <iq/>, result or
// error, readable only during the call — or with an error wrapping
// ErrNoAnswer when wait passes first, or ErrStreamEnded when the stream
// ends first (Close). Only an answer from the IQ's addressee is taken
// (from the server or no one for an IQ to the account or the server); an
// answer from anyone else goes to the session's handler.
//
// answer runs on the goroutine that reads the stream, or on a timer's: it
// must not block, and must not wait for the stream.
func (t *IQTracker) SendIQFunc(ctx context.Context, payload xml.TokenReader, iq stanza.IQ, wait time.Duration, answer func(xml.TokenReader, error)) error {
	if iq.Type != stanza.GetIQ && iq.Type != stanza.SetIQ {
		return fmt.Errorf("xmppclient: SendIQFunc with an IQ of type %q, not get or set", iq.Type)
	}
	if iq.ID == "" {
		iq.ID = newIQID()
	}
	p := &pendingIQ{to: iq.To, answer: answer}
	t.mu.Lock()
	s, err := t.sessionLocked()
	if err != nil {
		t.mu.Unlock()
		return err
	}
	if t.pending == nil {
		t.pending = map[string]*pendingIQ{}
	}
	if _, dup := t.pending[iq.ID]; dup {
		t.mu.Unlock()
		return fmt.Errorf("xmppclient: an IQ with id %q is in flight", iq.ID)
	}
	t.pending[iq.ID] = p
	// The timer is set under t.mu: the answer cannot take p before it is.
	id := iq.ID
	p.timer = time.AfterFunc(wait, func() {
		if t.take(id, p) {
			answer(nil, fmt.Errorf("xmppclient: IQ %s to %s: %w (%v)", id, iq.To.String(), ErrNoAnswer, wait))
		}
	})
	t.mu.Unlock()
	if err := s.SendElement(ctx, payload, iq.StartElement()); err != nil {
		if !t.take(id, p) {
			// Answered (or timed out, or closed) already: answer was called.
			return nil
		}
		p.timer.Stop()
		return err
	}
	return nil
}

// take removes the IQ id from the map if p is still its entry, and
// reports whether it did: whoever takes p calls its answer.
func (t *IQTracker) take(id string, p *pendingIQ) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending[id] != p {
		return false
	}
	delete(t.pending, id)
	return true
}

// Close fails every IQ in flight with an error wrapping ErrStreamEnded
// and cause (when not nil), and makes later SendIQFunc calls fail with
// it. A Client closes its tracker when its stream ends.
func (t *IQTracker) Close(cause error) {
	err := ErrStreamEnded
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrStreamEnded, cause)
	}
	t.mu.Lock()
	if t.closed == nil {
		t.closed = err
	}
	ps := t.pending
	t.pending = nil
	t.mu.Unlock()
	for _, p := range ps {
		p.timer.Stop()
		p.answer(nil, err)
	}
}

// Handler returns h behind the tracker: the answers to the tracker's IQs
// are handed to their functions, every other stanza goes to h (none when
// h is nil).
func (t *IQTracker) Handler(h xmpp.Handler) xmpp.Handler {
	return xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if p, ok := t.answerTo(start); ok {
			// The reader yields the IQ's children and its end tag.
			p.answer(xmlstream.MultiReader(xmlstream.Token(*start), r), nil)
			return nil
		}
		if h == nil {
			// mellium answers an IQ get or set no handler wrote to.
			return nil
		}
		return h.HandleXMPP(r, start)
	})
}

// answerTo returns the IQ in flight that start answers, taken out of the
// map, if any.
func (t *IQTracker) answerTo(start *xml.StartElement) (*pendingIQ, bool) {
	if start.Name.Local != "iq" || (start.Name.Space != stanza.NSClient && start.Name.Space != "") {
		return nil, false
	}
	h := iqhead.Of(*start)
	if h.Type != string(stanza.ResultIQ) && h.Type != string(stanza.ErrorIQ) {
		return nil, false
	}
	t.mu.Lock()
	p := t.pending[h.ID]
	local := jid.JID{}
	if t.session != nil {
		local = t.session.LocalAddr()
	}
	if p == nil || !answeredBy(p.to, h.From, local) {
		t.mu.Unlock()
		return nil, false
	}
	// Whoever takes p out of the map answers it: a timer that fired
	// meanwhile finds it gone.
	delete(t.pending, h.ID)
	t.mu.Unlock()
	p.timer.Stop()
	return p, true
}

// answeredBy reports whether an answer from from (mellium drops a from of
// the account's own bare JID) may answer an IQ sent to to.
func answeredBy(to jid.JID, from string, local jid.JID) bool {
	if from == "" {
		return to.Equal(jid.JID{}) || to.Equal(local.Bare()) || to.Equal(local.Domain())
	}
	f, err := jid.Parse(from)
	if err != nil {
		return false
	}
	if to.Equal(jid.JID{}) {
		return f.Equal(local.Domain()) || f.Equal(local.Bare())
	}
	return f.Equal(to)
}

func newIQID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
