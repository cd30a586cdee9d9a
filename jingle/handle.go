package jingle

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// Handler returns the mux option that routes <jingle/> IQ sets to m.
func (m *Manager) Handler() mux.Option {
	return mux.IQ(stanza.SetIQ, xml.Name{Space: NS, Local: "jingle"}, m)
}

// HandleIQ implements mux.IQHandler. It checks the action against the
// session's state and the sender, answers with an IQ result or the error
// XEP-0166 prescribes, and leaves everything that may block or send to the
// session's goroutine: a stanza handler must not send (mellium's Serve holds
// the stream while it runs).
func (m *Manager) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	lim := m.limits()
	// The decoder must see the start tag the mux has already read.
	lr := &LimitReader{R: xmlstream.MultiReader(xmlstream.Token(*start), t), Max: lim.MaxStanzaBytes}
	var j Jingle
	var jerr *Error
	if err := xml.NewTokenDecoder(lr).Decode(&j); err != nil {
		if lr.Exceeded() {
			jerr = StanzaError(stanza.Modify, stanza.PolicyViolation,
				fmt.Sprintf("jingle element larger than %d bytes", lim.MaxStanzaBytes))
		} else {
			jerr = BadRequest("malformed jingle element: %v", err)
		}
	}
	var s *Session
	var jobs []func()
	if jerr == nil {
		s, jobs, jerr = m.process(iq.From, &j)
	}
	if jerr != nil {
		m.logger().Debug("jingle: refused", "from", iq.From, "action", j.Action, "sid", j.SID, "err", jerr)
	}
	if err := reply(t, iq, jerr); err != nil {
		return err
	}
	if s != nil && len(jobs) > 0 {
		s.mu.Lock()
		for _, f := range jobs {
			s.enqueue(f)
		}
		s.mu.Unlock()
	}
	return nil
}

func reply(w xmlstream.TokenWriter, iq stanza.IQ, e *Error) error {
	resp := stanza.IQ{ID: iq.ID, To: iq.From, Type: stanza.ResultIQ}
	var payload xml.TokenReader
	if e != nil {
		resp.Type = stanza.ErrorIQ
		el, err := NewElement(e)
		if err != nil {
			return err
		}
		payload = el.TokenReader()
	}
	_, err := xmlstream.Copy(w, resp.Wrap(payload))
	return err
}

// validate checks what every action must satisfy.
func validate(j *Jingle, lim Limits) *Error {
	switch {
	case j.Action == "":
		return BadRequest("missing action")
	case !j.Action.Valid():
		return BadRequest("unknown action %q", j.Action)
	case j.SID == "":
		return BadRequest("missing sid")
	case len(j.Contents) > lim.MaxContents:
		return StanzaError(stanza.Modify, stanza.PolicyViolation, fmt.Sprintf("more than %d contents", lim.MaxContents))
	}
	for _, c := range j.Contents {
		switch {
		case c.Name == "":
			return BadRequest("content without name")
		case c.Creator == "":
			return BadRequest("content %q without creator", c.Name)
		case !c.Creator.Valid():
			return BadRequest("content %q: bad creator %q", c.Name, c.Creator)
		case !c.Senders.Valid():
			return BadRequest("content %q: bad senders %q", c.Name, c.Senders)
		}
	}
	if j.Reason != nil && j.Reason.Condition == "" {
		return BadRequest("reason without condition")
	}
	if j.Reason != nil && !j.Reason.Condition.Valid() {
		return BadRequest("unknown reason %q", j.Reason.Condition)
	}
	return nil
}

// process applies one inbound action. It returns the session concerned and
// the work to queue on its goroutine once the IQ is answered, or the error
// to answer with, in which case nothing changed.
func (m *Manager) process(from jid.JID, j *Jingle) (*Session, []func(), *Error) {
	lim := m.limits()
	if e := validate(j, lim); e != nil {
		return nil, nil, e
	}
	if j.Action == ActionSessionInitiate {
		return m.initiated(from, j)
	}
	s := m.lookup(from, j.SID)
	if s == nil {
		return nil, nil, NewError(ErrUnknownSession, "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == StateEnded {
		return nil, nil, NewError(ErrUnknownSession, "")
	}
	if len(s.queue) >= lim.MaxPending || s.events.Len() >= lim.MaxPending {
		return nil, nil, StanzaError(stanza.Wait, stanza.ResourceConstraint, "too many actions queued")
	}
	jobs, e := s.apply(j)
	return s, jobs, e
}

// initiated handles session-initiate.
func (m *Manager) initiated(from jid.JID, j *Jingle) (*Session, []func(), *Error) {
	if m.lookup(from, j.SID) != nil {
		return nil, nil, NewError(ErrOutOfOrder, "session exists")
	}
	if len(j.Contents) == 0 {
		return nil, nil, BadRequest("session-initiate without content")
	}
	names := map[string]bool{}
	sessionDisposition := false
	for _, c := range j.Contents {
		switch {
		case c.Creator != CreatorInitiator:
			return nil, nil, BadRequest("content %q: creator must be initiator", c.Name)
		case c.Description == nil:
			return nil, nil, BadRequest("content %q without description", c.Name)
		case c.Transport == nil:
			return nil, nil, BadRequest("content %q without transport", c.Name)
		case names[c.Name]:
			return nil, nil, BadRequest("duplicate content %q", c.Name)
		}
		names[c.Name] = true
		if c.Disposition == "" || c.Disposition == "session" {
			sessionDisposition = true
		}
	}
	if !sessionDisposition {
		return nil, nil, BadRequest("no content has disposition session")
	}
	if j.Initiator != "" {
		ini, err := jid.Parse(j.Initiator)
		if err != nil {
			return nil, nil, BadRequest("bad initiator: %v", err)
		}
		if !ini.Bare().Equal(from.Bare()) {
			return nil, nil, StanzaError(stanza.Cancel, stanza.NotAcceptable, "initiator is not the sender")
		}
	}
	stream, err := m.getStream()
	if err != nil {
		return nil, nil, StanzaError(stanza.Wait, stanza.ServiceUnavailable, "not ready")
	}
	if e := m.tieBreak(from, j); e != nil {
		return nil, nil, e
	}

	s := newSession(m, stream.LocalAddr(), from, j.SID, false)
	var unsupported ReasonCondition
	for _, c := range j.Contents {
		app, ok := m.application(c.Description.Namespace())
		if !ok {
			unsupported = ReasonUnsupportedApplications
			continue
		}
		if s.app == nil {
			s.app = app
		}
		if _, ok := m.transport(c.Description, c.Transport.Namespace()); !ok && unsupported == "" {
			unsupported = ReasonUnsupportedTransports
		}
	}
	for _, c := range j.Contents {
		w := c
		w.Transport = nil
		k := c.Key()
		s.contents[k] = &content{wire: w, state: contentActive, ns: c.Transport.Namespace()}
		s.order = append(s.order, k)
	}
	if err := m.add(s, false); err != nil {
		s.cancel()
		if errors.Is(err, ErrLimit) {
			return nil, nil, StanzaError(stanza.Wait, stanza.ResourceConstraint, err.Error())
		}
		return nil, nil, StanzaError(stanza.Cancel, stanza.ServiceUnavailable, err.Error())
	}
	s.start()
	if unsupported != "" {
		return s, []func(){func() {
			m.logger().Info("jingle: declining session", "from", from, "sid", j.SID, "reason", unsupported)
			_ = s.Terminate(s.ctx, Reason{Condition: unsupported})
		}}, nil
	}
	offers := slices.Clone(j.Contents)
	return s, []func(){func() {
		for _, c := range offers {
			if err := s.setupPeerTransport(c); err != nil {
				m.logger().Info("jingle: transport setup failed", "from", from, "sid", j.SID, "err", err)
				_ = s.Terminate(s.ctx, Reason{Condition: ReasonFailedTransport, Text: err.Error()})
				return
			}
		}
		s.mu.Lock()
		s.pushEvent(Event{Action: ActionSessionInitiate, Jingle: j, Content: j.Contents[0].Name})
		app := s.app
		s.mu.Unlock()
		// s.run holds a count on m.wg, so this Add cannot race with Wait.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			app.HandleSession(s.ctx, s)
			if s.State() != StateEnded {
				ctx, cancel := context.WithTimeout(context.Background(), m.limits().IQTimeout)
				defer cancel()
				_ = s.Terminate(ctx, Reason{Condition: ReasonSuccess})
			}
		}()
	}}, nil
}

// setupPeerTransport creates this side of a transport the peer offered.
func (s *Session) setupPeerTransport(c Content) error {
	tm, ok := s.m.transport(c.Description, c.Transport.Namespace())
	if !ok {
		return fmt.Errorf("transport %q not registered", c.Transport.Namespace())
	}
	offer := *c.Transport
	p := s.transportParams(c.Key(), &offer)
	p.Description = c.Description
	t, err := s.newTransport(s.ctx, tm, p)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cc := s.contents[c.Key()]
	if s.state == StateEnded || cc == nil {
		_ = t.Close()
		return ErrEnded
	}
	cc.t = t
	cc.gen++
	s.broadcast()
	return nil
}

// tieBreak applies XEP-0166 §7.2.16 to a session-initiate that crosses one
// of ours to the same peer for the same applications: the lower sid wins
// (then the lower JID). It returns the conflict error when ours wins.
func (m *Manager) tieBreak(from jid.JID, j *Jingle) *Error {
	theirs := appSet(j.Contents)
	m.mu.Lock()
	var mine []*Session
	for k, s := range m.sessions {
		if k.peer == from.String() && s.initiator {
			mine = append(mine, s)
		}
	}
	m.mu.Unlock()
	for _, s := range mine {
		s.mu.Lock()
		pending := s.initiating
		var offered []Content
		for _, k := range s.order {
			offered = append(offered, s.contents[k].wire)
		}
		local := s.local
		sid := s.sid
		s.mu.Unlock()
		if !pending || !slices.Equal(appSet(offered), theirs) {
			continue
		}
		ours := sid < j.SID || (sid == j.SID && local.String() < from.String())
		if ours {
			return NewError(ErrTieBreak, "crossing session-initiate; "+sid+" wins")
		}
	}
	return nil
}

func appSet(cs []Content) []string {
	var out []string
	for _, c := range cs {
		if c.Description != nil {
			out = append(out, c.Description.Namespace())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// apply handles every action but session-initiate; s.mu is held.
func (s *Session) apply(j *Jingle) ([]func(), *Error) {
	ev := Event{Action: j.Action, Jingle: j, Reason: j.Reason}
	if len(j.Contents) > 0 {
		ev.Content = j.Contents[0].Name
	}
	push := func() { s.mu.Lock(); s.pushEvent(ev); s.mu.Unlock() }
	switch j.Action {
	case ActionSessionAccept:
		return s.applySessionAccept(j, push)
	case ActionSessionTerminate:
		return s.applySessionTerminate(j)
	case ActionSessionInfo:
		return s.applySessionInfo(j, push)
	case ActionDescriptionInfo, ActionSecurityInfo:
		return s.applyContentInfo(j, push)
	case ActionTransportInfo:
		return s.applyTransportInfo(j)
	case ActionContentAdd:
		return s.applyContentAdd(j, push)
	case ActionContentAccept, ActionContentReject:
		return s.applyContentAnswer(j, push)
	case ActionContentRemove:
		return s.applyContentRemove(j, push)
	case ActionContentModify:
		return s.applyContentModify(j, push)
	case ActionTransportReplace:
		return s.applyTransportReplace(j, push)
	case ActionTransportAccept, ActionTransportReject:
		return s.applyTransportAnswer(j, push)
	}
	return nil, BadRequest("unhandled action %q", j.Action)
}

// findContents returns the session's contents named by the action, in
// order; s.mu is held.
func (s *Session) findContents(j *Jingle) ([]*content, *Error) {
	if len(j.Contents) == 0 {
		return nil, BadRequest("%s without content", j.Action)
	}
	out := make([]*content, 0, len(j.Contents))
	for _, c := range j.Contents {
		cc, ok := s.contents[c.Key()]
		if !ok {
			return nil, BadRequest("unknown content %q (creator %s)", c.Name, c.Key().Creator)
		}
		out = append(out, cc)
	}
	return out, nil
}

// applySessionAccept handles session-accept: the peer answered this side's offer. s.mu is held.
func (s *Session) applySessionAccept(j *Jingle, push func()) ([]func(), *Error) {
	if !s.initiator || s.state != StatePending {
		return nil, NewError(ErrOutOfOrder, "")
	}
	if j.Responder != "" {
		if _, err := jid.Parse(j.Responder); err != nil {
			return nil, BadRequest("bad responder: %v", err)
		}
	}
	cs, e := s.findContents(j)
	if e != nil {
		return nil, e
	}
	for i, c := range j.Contents {
		if c.Transport == nil {
			return nil, BadRequest("content %q without transport", c.Name)
		}
		if c.Transport.Namespace() != cs[i].ns {
			return nil, BadRequest("content %q: answered with transport %q, offered %q", c.Name, c.Transport.Namespace(), cs[i].ns)
		}
	}
	s.state = StateActive
	var jobs []func()
	for i, c := range j.Contents {
		cc, answer := cs[i], *c.Transport
		if c.Description != nil {
			cc.wire.Description = c.Description
		}
		jobs = append(jobs, s.setRemoteJob(cc, answer))
	}
	s.broadcast()
	return append(jobs, push), nil
}

// applySessionTerminate handles session-terminate. s.mu is held.
func (s *Session) applySessionTerminate(j *Jingle) ([]func(), *Error) {
	s.endLocked(j.Reason, true, j, nil)
	return nil, nil
}

// applySessionInfo handles session-info: a ping, or payloads the application must understand. s.mu is held.
func (s *Session) applySessionInfo(j *Jingle, push func()) ([]func(), *Error) {
	if len(j.Info) == 0 && len(j.Contents) == 0 {
		return nil, nil // a ping (XEP-0166 §6.8)
	}
	u, _ := s.app.(InfoUnderstander)
	for _, p := range j.Info {
		if u == nil || !u.UnderstandsInfo(p.XMLName) {
			return nil, NewError(ErrUnsupportedInfo, "")
		}
	}
	return []func(){push}, nil
}

// applyContentInfo handles description-info and security-info: for the application. s.mu is held.
func (s *Session) applyContentInfo(j *Jingle, push func()) ([]func(), *Error) {
	if _, e := s.findContents(j); e != nil {
		return nil, e
	}
	return []func(){push}, nil
}

// applyTransportInfo handles transport-info: for the content's transport (or its pending replacement). s.mu is held.
func (s *Session) applyTransportInfo(j *Jingle) ([]func(), *Error) {
	cs, e := s.findContents(j)
	if e != nil {
		return nil, e
	}
	var jobs []func()
	for i, c := range j.Contents {
		cc := cs[i]
		if c.Transport == nil {
			return nil, BadRequest("transport-info for %q without transport", c.Name)
		}
		replacing := false
		if cc.ns != c.Transport.Namespace() {
			if cc.replacing == nil || cc.replacing.ns != c.Transport.Namespace() {
				return nil, NewError(ErrUnsupportedInfo, "transport-info for another transport method")
			}
			replacing = true
		}
		info := *c.Transport
		jobs = append(jobs, func() {
			// The transport is looked up when the job runs, not when the
			// IQ arrived: a responder's transport is made by a job queued
			// with the session-initiate, and candidates trickled right
			// after it (as Conversations does) must reach it.
			s.mu.Lock()
			t := cc.t
			if replacing && cc.replacing != nil {
				t = cc.replacing.t
			}
			s.mu.Unlock()
			if t == nil {
				return
			}
			if err := t.HandleInfo(s.ctx, info); err != nil {
				s.m.logger().Info("jingle: transport-info", "sid", s.sid, "content", c.Name, "err", err)
			}
		})
	}
	return jobs, nil
}

// applyContentAdd handles content-add: the peer proposes new contents. s.mu is held.
func (s *Session) applyContentAdd(j *Jingle, push func()) ([]func(), *Error) {
	if len(s.order)+len(j.Contents) > s.m.limits().MaxContents {
		return nil, StanzaError(stanza.Modify, stanza.PolicyViolation, "too many contents")
	}
	for _, c := range j.Contents {
		switch {
		case c.Creator != s.peerRole():
			return nil, BadRequest("content %q: creator must be %s", c.Name, s.peerRole())
		case c.Description == nil || c.Transport == nil:
			return nil, BadRequest("content %q needs a description and a transport", c.Name)
		}
		if _, ok := s.contents[c.Key()]; ok {
			return nil, BadRequest("content %q exists", c.Name)
		}
	}
	var jobs []func()
	for _, c := range j.Contents {
		w := c
		w.Transport = nil
		k := c.Key()
		s.contents[k] = &content{wire: w, state: contentPendingAdd, ns: c.Transport.Namespace()}
		s.order = append(s.order, k)
		c := c
		jobs = append(jobs, func() {
			var why ReasonCondition
			if _, ok := s.m.application(c.Description.Namespace()); !ok {
				why = ReasonUnsupportedApplications
			} else if err := s.setupPeerTransport(c); err != nil {
				why = ReasonUnsupportedTransports
			}
			if why != "" {
				_ = s.RejectContent(s.ctx, c.Name, &Reason{Condition: why})
			}
		})
	}
	s.broadcast()
	return append(jobs, push), nil
}

// applyContentAnswer handles content-accept and content-reject: the peer's answer to this side's content-add. s.mu is held.
func (s *Session) applyContentAnswer(j *Jingle, push func()) ([]func(), *Error) {
	cs, e := s.findContents(j)
	if e != nil {
		return nil, e
	}
	for _, cc := range cs {
		if cc.state != contentPendingAdd || cc.wire.Creator != s.Role() {
			return nil, NewError(ErrOutOfOrder, "content "+cc.wire.Name+" is not a pending content-add of ours")
		}
	}
	var jobs []func()
	for i, c := range j.Contents {
		cc := cs[i]
		if j.Action == ActionContentReject {
			jobs = append(jobs, s.removeLocked(cc.wire.Key()))
			continue
		}
		cc.state = contentActive
		if c.Description != nil {
			cc.wire.Description = c.Description
		}
		if c.Transport != nil {
			jobs = append(jobs, s.setRemoteJob(cc, *c.Transport))
		}
	}
	s.broadcast()
	return append(jobs, push, s.terminateIfEmpty(j.Reason)), nil
}

// applyContentRemove handles content-remove. s.mu is held.
func (s *Session) applyContentRemove(j *Jingle, push func()) ([]func(), *Error) {
	cs, e := s.findContents(j)
	if e != nil {
		return nil, e
	}
	var jobs []func()
	for _, cc := range cs {
		jobs = append(jobs, s.removeLocked(cc.wire.Key()))
	}
	s.broadcast()
	return append(jobs, push, s.terminateIfEmpty(j.Reason)), nil
}

// applyContentModify handles content-modify: new senders. s.mu is held.
func (s *Session) applyContentModify(j *Jingle, push func()) ([]func(), *Error) {
	cs, e := s.findContents(j)
	if e != nil {
		return nil, e
	}
	for _, c := range j.Contents {
		if c.Senders == "" {
			return nil, BadRequest("content-modify of %q without senders", c.Name)
		}
	}
	for i, c := range j.Contents {
		cs[i].wire.Senders = c.Senders
	}
	s.broadcast()
	return []func(){push}, nil
}

// applyTransportReplace handles transport-replace: the peer proposes another method. s.mu is held.
func (s *Session) applyTransportReplace(j *Jingle, push func()) ([]func(), *Error) {
	cs, e := s.findContents(j)
	if e != nil {
		return nil, e
	}
	for i, c := range j.Contents {
		if c.Transport == nil {
			return nil, BadRequest("transport-replace of %q without transport", c.Name)
		}
		if cs[i].replacing != nil && s.initiator {
			// XEP-0166 §7.2.16: in an existing session the initiator's
			// action wins.
			return nil, NewError(ErrTieBreak, "")
		}
	}
	var jobs []func()
	for i, c := range j.Contents {
		cc, c := cs[i], c
		cc.peerReplacing = true
		jobs = append(jobs, func() { s.answerReplace(cc, c) })
	}
	return append(jobs, push), nil
}

// applyTransportAnswer handles transport-accept and transport-reject: the peer's answer to this side's transport-replace. s.mu is held.
func (s *Session) applyTransportAnswer(j *Jingle, push func()) ([]func(), *Error) {
	cs, e := s.findContents(j)
	if e != nil {
		return nil, e
	}
	for _, cc := range cs {
		if cc.replacing == nil {
			return nil, NewError(ErrOutOfOrder, "no transport-replace of "+cc.wire.Name+" pending")
		}
	}
	var jobs []func()
	for i, c := range j.Contents {
		cc := cs[i]
		rep := cc.replacing
		cc.replacing = nil
		if j.Action == ActionTransportReject {
			jobs = append(jobs, func() { _ = rep.t.Close() })
			rep.result <- fmt.Errorf("jingle: peer rejected transport %s: %w", rep.ns, ErrTransportFailed)
			continue
		}
		old := cc.t
		cc.t, cc.ns = rep.t, rep.ns
		cc.gen++
		var answer *Element
		if c.Transport != nil {
			a := *c.Transport
			answer = &a
		}
		key := cc.wire.Key()
		jobs = append(jobs, func() {
			if old != nil {
				_ = old.Close()
			}
			s.observe(TransportReplaced, key, rep.ns, nil)
			var err error
			if answer != nil {
				err = rep.t.SetRemote(s.ctx, *answer)
				s.observe(TransportAccepted, key, rep.ns, func(e *TransportEvent) { e.Proposer, e.Err = true, err })
			}
			rep.result <- err
		})
	}
	s.broadcast()
	return append(jobs, push), nil
}

// setRemoteJob hands the peer's transport answer to the content's transport.
func (s *Session) setRemoteJob(cc *content, answer Element) func() {
	t, key, ns := cc.t, cc.wire.Key(), cc.ns
	return func() {
		if t == nil {
			return
		}
		err := t.SetRemote(s.ctx, answer)
		if err != nil {
			s.m.logger().Info("jingle: transport answer refused", "sid", s.sid, "content", cc.wire.Name, "err", err)
		}
		s.observe(TransportAccepted, key, ns, func(e *TransportEvent) { e.Proposer, e.Err = true, err })
	}
}

// removeLocked drops a content now and returns the job that closes its
// transports; s.mu is held.
func (s *Session) removeLocked(k ContentKey) func() {
	cc := s.contents[k]
	delete(s.contents, k)
	s.order = slices.DeleteFunc(s.order, func(o ContentKey) bool { return o == k })
	return func() {
		if cc.t != nil {
			_ = cc.t.Close()
		}
		if cc.replacing != nil {
			_ = cc.replacing.t.Close()
			cc.replacing.result <- ErrEnded
		}
	}
}

// terminateIfEmpty returns the job that ends a session left with no content
// (XEP-0166 §7.2.4, §7.2.5); s.mu is held.
// The reason given for the removal, if any, is echoed.
func (s *Session) terminateIfEmpty(why *Reason) func() {
	return func() {
		s.mu.Lock()
		empty := len(s.order) == 0
		s.mu.Unlock()
		if empty {
			r := Reason{Condition: ReasonSuccess, Text: "no content left"}
			if why != nil {
				r = *why
			}
			_ = s.Terminate(s.ctx, r)
		}
	}
}

// answerReplace takes or refuses the peer's transport-replace.
func (s *Session) answerReplace(cc *content, c Content) {
	defer func() {
		s.mu.Lock()
		cc.peerReplacing = false
		s.broadcast()
		s.mu.Unlock()
	}()
	key := c.Key()
	reject := func(why string) {
		s.m.logger().Info("jingle: transport-replace rejected", "sid", s.sid, "content", c.Name, "why", why)
		_ = s.send(s.ctx, &Jingle{Action: ActionTransportReject, SID: s.sid,
			Contents: []Content{{Creator: key.Creator, Name: key.Name, Transport: c.Transport}}})
	}
	offer := *c.Transport
	p := s.transportParams(key, &offer)
	s.mu.Lock()
	p.Description = cc.wire.Description
	s.mu.Unlock()
	tm, ok := s.m.transport(p.Description, c.Transport.Namespace())
	if !ok {
		reject("method not registered")
		return
	}
	t, err := s.newTransport(s.ctx, tm, p)
	if err != nil {
		reject(err.Error())
		return
	}
	// When our own transport-replace crosses the peer's, let it reach the
	// peer (and be refused by the tie-break) before we accept theirs: were
	// our transport-accept to overtake it, the peer would take our stale
	// replacement for a new one.
	s.mu.Lock()
	own := cc.replacing
	s.mu.Unlock()
	if own != nil {
		select {
		case <-own.sent:
		case <-s.ctx.Done():
		}
	}
	s.mu.Lock()
	if s.state == StateEnded || s.contents[key] != cc {
		s.mu.Unlock()
		_ = t.Close()
		return
	}
	old := cc.t
	cc.t, cc.ns = t, c.Transport.Namespace()
	cc.gen++
	if cc.replacing != nil {
		// Our own crossing replacement lost the tie-break.
		_ = cc.replacing.t.Close()
		cc.replacing.result <- NewError(ErrTieBreak, "the initiator's transport-replace won")
		cc.replacing = nil
	}
	s.broadcast()
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	s.observe(TransportReplaced, key, c.Transport.Namespace(), nil)
	el := t.Local()
	if err := s.send(s.ctx, &Jingle{Action: ActionTransportAccept, SID: s.sid,
		Contents: []Content{{Creator: key.Creator, Name: key.Name, Transport: &el}}}); err != nil {
		s.m.logger().Info("jingle: transport-accept", "sid", s.sid, "content", c.Name, "err", err)
	}
}

// LimitReader stops reading once the tokens read add up to more than Max
// bytes (names, attribute values, text): the token that crosses the limit
// is not returned, and the error wraps ErrLimit. Protocols that read
// stanzas next to Jingle (XEP-0353 messages, say) bound them with it too.
type LimitReader struct {
	R   xml.TokenReader
	Max int

	read     int
	exceeded bool
}

// Token implements xml.TokenReader.
func (l *LimitReader) Token() (xml.Token, error) {
	tok, err := l.R.Token()
	if tok != nil {
		l.read += tokenSize(tok)
		if l.read > l.Max {
			l.exceeded = true
			return nil, fmt.Errorf("jingle: element too large: %w", ErrLimit)
		}
	}
	return tok, err
}

// Exceeded reports whether the limit was reached.
func (l *LimitReader) Exceeded() bool { return l.exceeded }

func tokenSize(tok xml.Token) int {
	switch t := tok.(type) {
	case xml.StartElement:
		n := len(t.Name.Local) + len(t.Name.Space) + 2
		for _, a := range t.Attr {
			n += len(a.Name.Local) + len(a.Name.Space) + len(a.Value) + 4
		}
		return n
	case xml.EndElement:
		return len(t.Name.Local) + 3
	case xml.CharData:
		return len(t)
	case xml.Comment:
		return len(t)
	}
	return 1
}
