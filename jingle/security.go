package jingle

import (
	"context"
	"errors"
	"fmt"
	"net"

	"mellium.im/xmpp/jid"
)

// SecurityMethod is a Jingle security layer: it understands the <security/>
// elements of one namespace (XEP-0391's, say) that a content carries next
// to its <description/> and <transport/>, and protects the content's stream.
// Register it on a Manager with RegisterSecurity. The session layer knows
// nothing of what it does: it hands the peer's <security/> to Open and the
// stream to the returned Security.
type SecurityMethod interface {
	// Namespace is the namespace of the method's <security/> element.
	Namespace() string
	// Open reads the <security/> of a content the peer proposed and returns
	// the layer for that content's stream. It may block (to fetch keys,
	// say) until ctx is done. An error means the content cannot be
	// received securely.
	Open(ctx context.Context, p SecurityParams) (Security, error)
}

// SecurityParams is what a SecurityMethod is told about the content whose
// <security/> it opens.
type SecurityParams struct {
	SID     string
	Content ContentKey
	// Local and Peer are the full JIDs of this side and the other.
	Local, Peer jid.JID
	Initiator   bool
	Description *Element
	// Offer is the peer's <security/>.
	Offer Element
}

// StreamUse tells a Security how the application uses a stream.
type StreamUse struct {
	// Sending is true when this side writes the stream, false when it
	// reads it.
	Sending bool
	// Size is the number of bytes the application moves, -1 when unknown.
	// A layer that frames or authenticates the data may need it to know
	// where the data ends.
	Size int64
}

// Security is the security layer of one content: it wraps the content's
// stream, so that what the application writes is protected on the wire
// and what it reads was checked.
type Security interface {
	// WrapConn wraps the content's stream transport connection.
	WrapConn(ctx context.Context, conn net.Conn, use StreamUse) (net.Conn, error)
}

// ErrUnsupportedSecurity is wrapped by Session.Security when the peer's
// <security/> has a namespace no registered SecurityMethod handles.
var ErrUnsupportedSecurity = errors.New("jingle: unsupported security layer")

// ErrSecured is returned by Session.Conn for a content that has a security
// layer: its stream is only available through SecureConn.
var ErrSecured = errors.New("jingle: the content has a security layer; use SecureConn")

// RegisterSecurity plugs in a security method for the <security/> elements
// of its namespace. A namespace registered before is an error wrapping
// ErrDuplicate.
func (m *Manager) RegisterSecurity(sm SecurityMethod) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.security[sm.Namespace()]; ok {
		return fmt.Errorf("jingle: security %q: %w", sm.Namespace(), ErrDuplicate)
	}
	m.security[sm.Namespace()] = sm
	return nil
}

func (m *Manager) securityMethod(ns string) (SecurityMethod, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sm, ok := m.security[ns]
	return sm, ok
}

// contentSecurity is the security state of one content.
type contentSecurity struct {
	layer  Security
	opened bool
	err    error
}

// Security returns the named content's security layer: the one given in
// the Offer for a content this side proposed, or, for the peer's, the
// result of opening its <security/> with the registered method (once; the
// result is kept). It returns nil and no error for a content without
// security, and an error wrapping ErrUnsupportedSecurity when no method
// handles the peer's <security/>.
func (s *Session) Security(ctx context.Context, name string) (Security, error) {
	s.mu.Lock()
	c, err := s.byName(name)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	sec := &c.sec
	if sec.opened || c.wire.Security == nil {
		s.mu.Unlock()
		return sec.layer, sec.err
	}
	offer := *c.wire.Security
	key := c.wire.Key()
	desc := c.wire.Description
	s.mu.Unlock()

	var layer Security
	sm, ok := s.m.securityMethod(offer.Namespace())
	if !ok {
		err = fmt.Errorf("jingle: content %q: <security xmlns='%s'>: %w", name, offer.Namespace(), ErrUnsupportedSecurity)
	} else {
		layer, err = sm.Open(ctx, SecurityParams{
			SID: s.sid, Content: key, Local: s.local, Peer: s.peer, Initiator: s.initiator,
			Description: desc, Offer: offer,
		})
		if err == nil && layer == nil {
			err = fmt.Errorf("jingle: content %q: security method %s returned no layer", name, offer.Namespace())
		}
	}
	if err != nil && ctx.Err() != nil {
		return nil, err // not the method's verdict: may be retried
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !sec.opened {
		sec.layer, sec.err, sec.opened = layer, err, true
	}
	return sec.layer, sec.err
}

// SecureConn is Conn for a content that may have a security layer: the
// stream is wrapped by the content's Security (see Session.Security) when
// it has one, and returned as is otherwise. use tells the layer how the
// stream is used.
func (s *Session) SecureConn(ctx context.Context, name string, use StreamUse) (net.Conn, error) {
	layer, err := s.Security(ctx, name)
	if err != nil {
		return nil, err
	}
	conn, err := s.conn(ctx, name)
	if err != nil || layer == nil {
		return conn, err
	}
	wrapped, err := layer.WrapConn(ctx, conn, use)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("jingle: content %q: securing the stream: %w", name, err)
	}
	return wrapped, nil
}
