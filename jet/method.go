package jet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"mellium.im/xmpp/jid"

	"github.com/jinglekit/jinglekit/jingle"
)

// Envelope carries a stream's key and IV to the peer, encrypted for it: an
// envelope type of XEP-0391 (XEP-0396's OMEMO, say).
type Envelope interface {
	// Type is the envelope's namespace, the type attribute of <security/>.
	Type() string
	// Seal encrypts key and iv for the devices of peer's account and
	// returns the envelope element.
	Seal(ctx context.Context, peer jid.JID, key, iv []byte) (jingle.Element, error)
	// Open decrypts an envelope sent by peer and returns the key and IV.
	Open(ctx context.Context, peer jid.JID, env jingle.Element) (key, iv []byte, err error)
}

// ErrNoEnvelope is returned when an offer names an envelope type no
// registered Envelope handles.
var ErrNoEnvelope = errors.New("jet: unsupported envelope type")

// Method is XEP-0391 as a jingle.SecurityMethod: register it on a Manager
// (RegisterSecurity) to receive encrypted contents, and use Offer to send
// them.
type Method struct {
	// Envelopes are the envelope types this side understands, preferred
	// first.
	Envelopes []Envelope
}

// Namespace implements jingle.SecurityMethod.
func (m *Method) Namespace() string { return NS }

// Features implements jingle.FeatureAdvertiser: each envelope may add its
// own (XEP-0396's urn:xmpp:jingle:jet-omemo:0).
func (m *Method) Features() []string {
	var f []string
	for _, e := range m.Envelopes {
		if fa, ok := e.(jingle.FeatureAdvertiser); ok {
			f = append(f, fa.Features()...)
		}
	}
	return f
}

func (m *Method) envelope(typ string) (Envelope, bool) {
	for _, e := range m.Envelopes {
		if e.Type() == typ {
			return e, true
		}
	}
	return nil, false
}

// Open implements jingle.SecurityMethod: it decrypts the envelope of the
// peer's <security/>.
func (m *Method) Open(ctx context.Context, p jingle.SecurityParams) (jingle.Security, error) {
	s, err := ParseSecurity(p.Offer)
	if err != nil {
		return nil, err
	}
	env, ok := m.envelope(s.Type)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrNoEnvelope, s.Type)
	}
	key, iv, err := env.Open(ctx, p.Peer, *s.Envelope)
	if err != nil {
		return nil, fmt.Errorf("jet: opening the %s envelope of content %q from %s: %w", s.Type, p.Content.Name, p.Peer.String(), err)
	}
	return NewLayer(key, iv)
}

// Offer makes the <security/> element and the layer of a content this side
// proposes to peer, with a fresh key and IV sealed in an envelope of the
// given type ("" for the first of Envelopes).
func (m *Method) Offer(ctx context.Context, peer jid.JID, content, typ string) (jingle.Element, *Layer, error) {
	var env Envelope
	if typ == "" && len(m.Envelopes) > 0 {
		env = m.Envelopes[0]
	} else if e, ok := m.envelope(typ); ok {
		env = e
	}
	if env == nil {
		return jingle.Element{}, nil, fmt.Errorf("%w %q", ErrNoEnvelope, typ)
	}
	key, iv := make([]byte, KeySize), make([]byte, IVSize)
	if _, err := rand.Read(key); err != nil {
		return jingle.Element{}, nil, fmt.Errorf("jet: %w", err)
	}
	if _, err := rand.Read(iv); err != nil {
		return jingle.Element{}, nil, fmt.Errorf("jet: %w", err)
	}
	envEl, err := env.Seal(ctx, peer, key, iv)
	if err != nil {
		return jingle.Element{}, nil, fmt.Errorf("jet: sealing the key for %s: %w", peer.Bare().String(), err)
	}
	el, err := Security{Name: content, Cipher: CipherAES128GCM, Type: env.Type(), Envelope: &envEl}.Element()
	if err != nil {
		return jingle.Element{}, nil, err
	}
	layer, err := NewLayer(key, iv)
	return el, layer, err
}

// Layer is the AES-128-GCM protection of one content's stream: a
// jingle.Security.
type Layer struct {
	key, iv []byte
}

// NewLayer returns the layer for a key and IV.
func NewLayer(key, iv []byte) (*Layer, error) {
	if len(key) != KeySize || len(iv) != IVSize {
		return nil, fmt.Errorf("jet: AES-128-GCM needs a %d-byte key and a %d-byte IV (got %d and %d)", KeySize, IVSize, len(key), len(iv))
	}
	return &Layer{key: key, iv: iv}, nil
}

// WrapConn implements jingle.Security: the sender's writes are encrypted,
// the receiver's reads decrypted and authenticated (see SealConn and
// OpenConn).
func (l *Layer) WrapConn(_ context.Context, conn net.Conn, use jingle.StreamUse) (net.Conn, error) {
	if use.Sending {
		return SealConn(conn, l.key, l.iv, use.Size)
	}
	return OpenConn(conn, l.key, l.iv, use.Size)
}
